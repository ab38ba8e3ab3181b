//! Webhook HTTP delivery with an SSRF guard: only http(s), only ports 80 and
//! 443 unless configured; the host is resolved here and every address checked
//! against [`targets::is_internal`] (loopback, private, link-local, CGNAT,
//! reserved and documentation ranges, multicast, 6to4, Teredo, NAT64 and the
//! IPv4-mapped and -compatible forms are refused unless configured
//! otherwise); the connection goes to a checked address; redirects are not
//! followed (a 3xx is a failed attempt). A failed attempt is recorded with a
//! generic reason ([`ERRORS`]): connect errors, resolver messages and
//! addresses never reach the attempt record or the `/test` answer.

mod targets;

pub use targets::{is_internal, refuse, TargetPolicy};

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use commands::webhooks::{SendOutcome, WebhookSender};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How the resolver says it dropped every address of a name.
const GUARD_REFUSAL: &str = "resolves only to addresses webhooks may not reach";

/// Resolves names and drops the addresses a webhook may not reach.
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow_internal: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_internal;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = addrs.into_iter().filter(|a| allow || !is_internal(a.ip())).collect();
            if permitted.is_empty() {
                return Err(format!("{host} {GUARD_REFUSAL}").into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The reason recorded when a target is refused at send time.
pub const REFUSED: &str = "refused: the target is not an allowed address or port";
/// The reason recorded when no connection could be made.
pub const UNREACHABLE: &str = "could not connect to the endpoint";
/// The reason recorded when the endpoint did not answer in time.
pub const TIMED_OUT: &str = "the endpoint did not answer in time";
/// The reason recorded for any other failure.
pub const FAILED: &str = "the request failed";
/// Every reason an attempt can record.
pub const ERRORS: &[&str] = &[REFUSED, UNREACHABLE, TIMED_OUT, FAILED];

/// The reason shown for a recorded failure: one of [`ERRORS`] (older or
/// foreign texts, which may carry connect details, become [`FAILED`]).
pub fn public_error(error: &str) -> &'static str {
    ERRORS.iter().copied().find(|e| *e == error).unwrap_or(FAILED)
}

/// The HTTP sender.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    policy: TargetPolicy,
}

impl HttpWebhookSender {
    /// A sender with the default ports (80, 443); `allow_internal` lets
    /// webhooks reach loopback and private addresses (tests, private deployments).
    pub fn new(allow_internal: bool) -> Result<Self, reqwest::Error> {
        Self::with_policy(TargetPolicy { allow_internal, ..TargetPolicy::default() })
    }

    /// A sender under `policy`.
    pub fn with_policy(policy: TargetPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { allow_internal: policy.allow_internal }))
            .no_proxy()
            .user_agent("chargeledger-webhooks/1")
            .build()?;
        Ok(Self { client, policy })
    }

    /// Why `url` may not be a webhook target, if it may not.
    pub fn refuse(&self, url: &str) -> Option<String> {
        refuse(url, &self.policy)
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().to_owned();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(&value).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).clamp(0, 86_400);
    Some(Duration::from_secs(secs as u64))
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> SendOutcome {
        let started = Instant::now();
        if self.refuse(url).is_some() {
            return SendOutcome { error: Some(REFUSED.into()), ..SendOutcome::default() };
        }
        let mut request = self.client.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry = retry_after(response.headers());
                // At most 4 KiB of the answer are read.
                let mut excerpt = Vec::new();
                let mut response = response;
                while excerpt.len() < 4096 {
                    match tokio::time::timeout(Duration::from_secs(2), response.chunk()).await {
                        Ok(Ok(Some(chunk))) => excerpt.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                let text = String::from_utf8_lossy(&excerpt).chars().take(512).collect::<String>();
                SendOutcome {
                    status: Some(status),
                    duration_ms: started.elapsed().as_millis() as u64,
                    excerpt: (!text.is_empty()).then_some(text),
                    error: None,
                    retry_after: retry,
                }
            }
            Err(e) => {
                // The detail (resolver text, OS error, address) stays out of
                // the record: it would make the endpoint a network probe.
                let error = if e.is_timeout() {
                    TIMED_OUT
                } else if e.is_connect() {
                    let mut cause: Option<&dyn std::error::Error> = Some(&e);
                    let mut refused = false;
                    while let Some(c) = cause {
                        refused |= c.to_string().contains(GUARD_REFUSAL);
                        cause = c.source();
                    }
                    if refused {
                        REFUSED
                    } else {
                        UNREACHABLE
                    }
                } else {
                    FAILED
                };
                tracing::debug!(error = %e.without_url(), "webhook attempt failed");
                SendOutcome {
                    duration_ms: started.elapsed().as_millis() as u64,
                    error: Some(error.into()),
                    ..SendOutcome::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_and_unreachable_targets_record_only_a_generic_reason() {
        let strict = HttpWebhookSender::new(false).unwrap();
        let out = strict.send("http://10.0.0.1:22/", &[], b"{}".to_vec(), Duration::from_secs(1)).await;
        assert_eq!((out.status, out.error.as_deref(), out.excerpt), (None, Some(REFUSED), None));
        // A closed port on loopback (allowed here): no OS error text, no address.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let open = HttpWebhookSender::new(true).unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        let out = open.send(&url, &[], b"{}".to_vec(), Duration::from_secs(5)).await;
        assert!(out.status.is_none());
        let error = out.error.unwrap();
        assert!(ERRORS.contains(&error.as_str()), "{error}");
        assert!(!error.contains("127.0.0.1") && !error.contains("os error"), "{error}");
        assert_eq!(public_error("could not connect: tcp connect error: Connection refused (os error 111)"), FAILED);
        assert_eq!(public_error(REFUSED), REFUSED);
    }
}
