//! Abuse limits of the REST API (ADR 0015): per-credential rate limits,
//! request timeouts, body size, stalled handshakes, and idempotency-key expiry.

use std::{net::SocketAddr, time::Duration};

use super::Settings;

/// Limits of the REST port.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Requests per minute per credential (API key, or JWT subject and company); 0 turns the limiter off.
    pub rate_per_min: u32,
    /// Bucket size per credential (requests allowed at once).
    pub rate_burst: u32,
    /// Requests per minute per source address without valid credentials.
    pub anon_rate_per_min: u32,
    /// Bucket size per source address.
    pub anon_burst: u32,
    /// Longest a request may take before it is answered 503 (request-timeout).
    pub request_timeout: Duration,
    /// Largest request body; larger ones are answered 413.
    pub max_body_bytes: usize,
    /// A connection that has not sent a complete request head within this is closed.
    pub header_read_timeout: Duration,
    /// How long a stored idempotent response is kept (and its key held).
    pub idempotency_ttl: Duration,
    /// A separate listener for `/metrics` and `/health/detailed` (then not served on the API port).
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for LimitsConfig {
    /// The settings table's defaults.
    fn default() -> Self {
        Self::from_settings(&Settings::defaults())
    }
}

impl LimitsConfig {
    /// The limits of `s`, with the bounds they always had.
    pub(super) fn from_settings(s: &Settings) -> Self {
        Self {
            rate_per_min: s.rate_limit_per_min,
            rate_burst: s.rate_limit_burst.max(1),
            anon_rate_per_min: s.rate_limit_anon_per_min.max(1),
            anon_burst: s.rate_limit_anon_burst.max(1),
            request_timeout: Duration::from_millis(s.request_timeout_ms.max(10)),
            max_body_bytes: usize::try_from(s.max_body_bytes.0).unwrap_or(usize::MAX),
            header_read_timeout: Duration::from_millis(s.http_header_timeout_ms.max(10)),
            idempotency_ttl: Duration::from_secs(s.idempotency_ttl_secs.max(1)),
            metrics_addr: s.metrics_addr,
        }
    }
}
