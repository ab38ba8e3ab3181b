//! Abuse limits of the REST API (ADR 0015): per-credential rate limits,
//! request timeouts, body size, stalled handshakes, and idempotency-key expiry.

use std::{net::SocketAddr, time::Duration};

use super::{env, parse, ConfigError, FileConfig};

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
    fn default() -> Self {
        Self {
            rate_per_min: 600,
            rate_burst: 120,
            anon_rate_per_min: 120,
            anon_burst: 60,
            request_timeout: Duration::from_secs(90),
            max_body_bytes: 256 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            metrics_addr: None,
        }
    }
}

impl LimitsConfig {
    /// From the file and the environment (environment first).
    pub(super) fn load(f: &FileConfig) -> Result<Self, ConfigError> {
        let mut l = Self::default();
        let u32_of = |name: &str, file: Option<u32>| -> Result<Option<u32>, ConfigError> {
            Ok(parse::<u32>(name, env(name))?.or(file))
        };
        if let Some(v) = u32_of("CHARGELEDGER_RATE_LIMIT_PER_MIN", f.rate_limit_per_min)? {
            l.rate_per_min = v;
        }
        if let Some(v) = u32_of("CHARGELEDGER_RATE_LIMIT_BURST", f.rate_limit_burst)? {
            l.rate_burst = v.max(1);
        }
        if let Some(v) = u32_of("CHARGELEDGER_RATE_LIMIT_ANON_PER_MIN", f.rate_limit_anon_per_min)? {
            l.anon_rate_per_min = v.max(1);
        }
        if let Some(v) = u32_of("CHARGELEDGER_RATE_LIMIT_ANON_BURST", f.rate_limit_anon_burst)? {
            l.anon_burst = v.max(1);
        }
        let ms = |name: &str, file: Option<u64>| -> Result<Option<u64>, ConfigError> {
            Ok(parse::<u64>(name, env(name))?.or(file))
        };
        if let Some(v) = ms("CHARGELEDGER_REQUEST_TIMEOUT_MS", f.request_timeout_ms)? {
            l.request_timeout = Duration::from_millis(v.max(10));
        }
        if let Some(v) = ms("CHARGELEDGER_HTTP_HEADER_TIMEOUT_MS", f.http_header_timeout_ms)? {
            l.header_read_timeout = Duration::from_millis(v.max(10));
        }
        if let Some(v) = ms("CHARGELEDGER_IDEMPOTENCY_TTL_SECS", f.idempotency_ttl_secs)? {
            l.idempotency_ttl = Duration::from_secs(v.max(1));
        }
        if let Some(v) =
            parse::<usize>("CHARGELEDGER_MAX_BODY_BYTES", env("CHARGELEDGER_MAX_BODY_BYTES"))?.or(f.max_body_bytes)
        {
            if v < 1024 {
                return Err(ConfigError("CHARGELEDGER_MAX_BODY_BYTES must be at least 1024".into()));
            }
            l.max_body_bytes = v;
        }
        l.metrics_addr =
            parse("CHARGELEDGER_METRICS_ADDR", env("CHARGELEDGER_METRICS_ADDR").or_else(|| f.metrics_addr.clone()))?;
        Ok(l)
    }
}
