//! Webhook HTTP delivery with an SSRF guard: only http(s); the host is
//! resolved here and every address checked (loopback, private, link-local,
//! CGNAT, multicast, unspecified and the IPv4-mapped forms of those are
//! refused unless configured otherwise); the connection goes to a checked
//! address; redirects are not followed (a 3xx is a failed attempt).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use commands::webhooks::{SendOutcome, WebhookSender};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is one a webhook may not reach by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64
        }
    }
}

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
                return Err(format!("{host} resolves only to addresses webhooks may not reach").into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The HTTP sender.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    allow_internal: bool,
}

impl HttpWebhookSender {
    /// A sender; `allow_internal` lets webhooks reach loopback and private
    /// addresses (tests, private deployments).
    pub fn new(allow_internal: bool) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
            .no_proxy()
            .user_agent("chargeledger-webhooks/1")
            .build()?;
        Ok(Self { client, allow_internal })
    }

    /// Why `url` may not be a webhook target, if it may not.
    pub fn refuse(&self, url: &str) -> Option<String> {
        refuse(url, self.allow_internal)
    }
}

/// Why `url` may not be a webhook target: not http(s), no host, credentials in
/// it, or an address literal webhooks may not reach.
pub fn refuse(url: &str, allow_internal: bool) -> Option<String> {
    let Ok(parsed) = reqwest::Url::parse(url) else { return Some("is not a valid URL".into()) };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Some("must be http:// or https://".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("must not carry credentials".into());
    }
    match parsed.host() {
        None => Some("has no host".into()),
        Some(url::Host::Ipv4(ip)) if !allow_internal && is_internal(IpAddr::V4(ip)) => {
            Some("points to a private or loopback address".into())
        }
        Some(url::Host::Ipv6(ip)) if !allow_internal && is_internal(IpAddr::V6(ip)) => {
            Some("points to a private or loopback address".into())
        }
        Some(url::Host::Domain(d)) if !allow_internal && (d == "localhost" || d.ends_with(".localhost")) => {
            Some("points to a private or loopback address".into())
        }
        _ => None,
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
        if let Some(reason) = self.refuse(url) {
            return SendOutcome { error: Some(format!("refused target: {reason}")), ..SendOutcome::default() };
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
                let error = if e.is_timeout() {
                    format!("timed out after {} ms", timeout.as_millis())
                } else if e.is_connect() {
                    format!(
                        "could not connect: {}",
                        std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string())
                    )
                } else {
                    e.to_string()
                };
                SendOutcome {
                    duration_ms: started.elapsed().as_millis() as u64,
                    error: Some(error),
                    ..SendOutcome::default()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://localhost/",
            "http://100.64.0.1/",
        ] {
            assert!(refuse(url, false).is_some(), "{url} should be refused");
            assert!(refuse(url, true).is_none(), "{url} allowed by configuration");
        }
        assert!(refuse("ftp://example.com/", true).is_some());
        assert!(refuse("https://user:pw@example.com/", false).is_some());
        assert!(refuse("https://hooks.example.com/in", false).is_none());
        assert!(refuse("https://8.8.8.8/in", false).is_none());
    }
}
