//! Abuse limits of the REST API (ADR 0015), as one middleware in front of
//! every route: body size (413), per-credential and per-address rate limits
//! (429 with `Retry-After`) and the request timeout (503). Every refusal is a
//! problem+json document.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    auth::Caller,
    error::{ApiError, Problem},
    state::AppState,
};

/// Buckets kept at most; beyond it full (idle) buckets are dropped first.
const MAX_BUCKETS: usize = 100_000;

/// A problem+json response built here (the limits have no [`crate::error::ApiError`] variant).
pub fn problem(status: StatusCode, slug: &str, title: &str, detail: String) -> Response {
    let body = Problem {
        problem_type: format!("{}{slug}", crate::error::PROBLEM_BASE),
        title: title.into(),
        status: status.as_u16(),
        detail,
        errors: vec![],
        extensions: serde_json::Map::new(),
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"))], text).into_response()
}

/// The 413 answer.
pub fn too_large(limit: usize) -> Response {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Request body too large",
        format!("the request body is larger than {limit} bytes"),
    )
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by credential or source address, in this process.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes a token from `key`'s bucket, or says how long until one is there.
    pub fn take(&self, key: &str, per_min: u32, burst: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let rate = f64::from(per_min.max(1)) / 60.0;
        let burst = f64::from(burst.max(1));
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if !buckets.contains_key(key) && buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_BUCKETS {
                // Full of active buckets: an anonymous newcomer (a key made of
                // its address) is refused for a moment rather than let through
                // untracked; a credential is served (it authenticated).
                tracing::warn!("rate limiter is full");
                return if key.starts_with("ip:") { Err(Duration::from_secs(1)) } else { Ok(()) };
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

impl RateLimiter {
    /// Whether `key`'s bucket holds a token, without taking it.
    pub fn peek(&self, key: &str, per_min: u32, burst: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let rate = f64::from(per_min.max(1)) / 60.0;
        let Ok(buckets) = self.buckets.lock() else { return Ok(()) };
        let Some(bucket) = buckets.get(key) else { return Ok(()) };
        let tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(f64::from(burst.max(1)));
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }
}

/// The state of the middleware.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The app.
    pub state: AppState,
    /// This process's buckets.
    pub limiter: Arc<RateLimiter>,
}

/// The address bucket of a peer: the address, or its /64 for IPv6 (one host
/// usually holds a whole /64, so counting addresses would not limit it).
fn address_key(peer: Option<SocketAddr>) -> String {
    match peer.map(|p| p.ip()) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => format!("ip:{}", v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        Some(ip) => format!("ip:{ip}"),
        None => "ip:unknown".into(),
    }
}

/// The 429 answer, with `Retry-After` in whole seconds.
fn rate_limited(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!("too many requests from this credential or address; retry in {secs} s"),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

/// Probes stay unlimited: they are cheap and come from the orchestrator.
fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/health/live" | "/health/ready")
}

/// The middleware: body limit, rate limit, timeout.
pub async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let limits = &guard.state.config.limits;
    let max = limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large(max);
    }
    // U+0000 cannot reach Postgres (it refuses it in text): a query holding
    // one is refused here, for every route, as bodies are in JsonCommand.
    if req.uri().query().is_some_and(|q| q.to_ascii_lowercase().contains("%00")) {
        return ApiError::Validation(vec![domain::FieldError::new("query", "must not hold U+0000")]).into_response();
    }
    let (mut parts, body) = req.into_parts();
    let has_credentials = parts.headers.contains_key(header::AUTHORIZATION) || parts.headers.contains_key("x-api-key");
    // Who is calling, for the buckets and for scoping Idempotency-Keys (extract.rs).
    // An API key costs a database lookup: an address whose anonymous budget
    // is spent (by failed keys, among others) gets no more lookups.
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let api_key_only = parts.headers.contains_key("x-api-key") && !parts.headers.contains_key(header::AUTHORIZATION);
    if limits.rate_per_min > 0 && api_key_only && !exempt(parts.uri.path()) {
        if let Err(wait) = guard.limiter.peek(&address_key(peer), limits.anon_rate_per_min, limits.anon_burst) {
            return rate_limited(wait);
        }
    }
    let caller = if has_credentials && !exempt(parts.uri.path()) {
        Caller::from_request_parts(&mut parts, &guard.state).await.ok()
    } else {
        None
    };
    if limits.rate_per_min > 0 && !exempt(parts.uri.path()) {
        let taken = match &caller {
            Some(c) => {
                guard.limiter.take(&format!("c:{}:{}", c.company_id, c.scope()), limits.rate_per_min, limits.rate_burst)
            }
            None => guard.limiter.take(&address_key(peer), limits.anon_rate_per_min, limits.anon_burst),
        };
        if let Err(wait) = taken {
            return rate_limited(wait);
        }
    }
    if let Some(caller) = caller {
        parts.extensions.insert(caller);
    }
    let body = Body::new(http_body_util::Limited::new(body, max));
    let req = Request::from_parts(parts, body);
    let response = match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "request-timeout",
                "The request took too long",
                format!(
                    "the request was not answered within {} ms; retry with the same Idempotency-Key",
                    limits.request_timeout.as_millis()
                ),
            )
        }
    };
    // Extractors that buffer the body themselves answer 413 in plain text.
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_problem {
        return too_large(max);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_limiter_refuses_new_anonymous_clients_and_serves_credentials() {
        let limiter = RateLimiter::default();
        for n in 0..MAX_BUCKETS {
            assert!(limiter.take(&format!("ip:10.{n}"), 1, 1).is_ok());
        }
        assert!(limiter.take("ip:192.0.2.1", 1, 1).is_err(), "an untracked anonymous client is not let through");
        assert!(limiter.take("c:company:admin:user:alice", 1, 1).is_ok());
    }

    #[test]
    fn a_bucket_allows_its_burst_then_names_the_wait() {
        let limiter = RateLimiter::default();
        for _ in 0..3 {
            assert!(limiter.take("a", 60, 3).is_ok());
        }
        let wait = limiter.take("a", 60, 3).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(limiter.take("b", 60, 3).is_ok(), "another key has its own bucket");
    }

    #[test]
    fn ipv6_hosts_share_their_64() {
        let a: SocketAddr = "[2001:db8:1:2::1]:80".parse().unwrap_or_else(|_| unreachable!());
        let b: SocketAddr = "[2001:db8:1:2::ffff]:80".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
    }
}
