//! The delivery worker's settings and its HTTP port.

use std::time::Duration;

use async_trait::async_trait;

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// How long one attempt may take before it counts as failed.
    pub timeout: Duration,
    /// Delays before each retry; after the last, the delivery is given up.
    pub schedule: Vec<Duration>,
    /// How many deliveries are sent at once.
    pub concurrency: usize,
    /// Redacts bodies before they leave (ADR 0018).
    pub redactor: crate::publication::Redactor,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let (s, m, h) = (Duration::from_secs(1), Duration::from_secs(60), Duration::from_secs(3600));
        Self {
            timeout: Duration::from_secs(15),
            schedule: vec![5 * s, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h],
            concurrency: 16,
            redactor: crate::publication::Redactor::default(),
        }
    }
}

/// What an endpoint answered to one attempt.
#[derive(Debug, Clone, Default)]
pub struct SendOutcome {
    /// HTTP status, when the endpoint answered at all.
    pub status: Option<u16>,
    /// Round trip, in milliseconds.
    pub duration_ms: u64,
    /// The start of the answer's body.
    pub excerpt: Option<String>,
    /// Why there is no answer (connect refused, timeout, a refused target).
    pub error: Option<String>,
    /// The endpoint's `Retry-After`, when it gave one.
    pub retry_after: Option<Duration>,
}

impl SendOutcome {
    /// Whether the endpoint accepted the delivery (answered 2xx).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|c| (200..300).contains(&c))
    }

    /// Whether the endpoint answered 410 Gone: it wants no more deliveries.
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// Sends one HTTP request (gateways implement it, with the SSRF guard).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs `body` to `url` with `headers`, within `timeout`.
    async fn send(&self, url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> SendOutcome;
}
