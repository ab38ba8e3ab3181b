//! Which webhook targets may be reached (the SSRF guard's rules, ADR 0012 and
//! ADR 0018): addresses by range, ports by configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where webhooks may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Loopback, private and other internal addresses are allowed (tests,
    /// private deployments); on such an address literal (or `localhost`) any
    /// port is allowed too.
    pub allow_internal: bool,
    /// Ports allowed on every other target; `None` allows any port.
    pub allowed_ports: Option<Vec<u16>>,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        Self { allow_internal: false, allowed_ports: Some(vec![80, 443]) }
    }
}

impl TargetPolicy {
    /// Whether `port` is allowed on a target that is not an internal literal
    /// allowed by `allow_internal`.
    pub fn port_allowed(&self, port: u16) -> bool {
        self.allowed_ports.as_ref().is_none_or(|ports| ports.contains(&port))
    }
}

/// Whether an address is one a webhook may not reach by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

fn v4_internal(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments 192.0.0.0/24
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast 192.88.99.0/24
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking 198.18.0.0/15
        || o[0] >= 240 // reserved 240.0.0.0/4
}

fn v6_internal(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded = Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32);
    // IPv4-mapped ::ffff:a.b.c.d: the IPv4 rules.
    if let Some(v4) = v6.to_ipv4_mapped() {
        return v4_internal(v4);
    }
    // NAT64 well-known prefix 64:ff9b::/96: the embedded address's IPv4 rules.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return v4_internal(embedded);
    }
    v6.is_unspecified()
        || v6.is_loopback()
        || v6.is_multicast()
        || s[0..6] == [0; 6] // IPv4-compatible ::a.b.c.d (deprecated)
        || (s[0..4] == [0; 4] && s[4] == 0xffff && s[5] == 0) // IPv4-translated ::ffff:0:a.b.c.d
        || (s[0] == 0x64 && s[1] == 0xff9b) // the rest of 64:ff9b::/32, local-use NAT64 64:ff9b:1::/48 among it
        || (s[0] == 0x100 && s[1..4] == [0; 3]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments 2001::/23, Teredo 2001::/32 among it
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation 2001:db8::/32
        || s[0] == 0x2002 // 6to4 2002::/16 (embeds any IPv4 address)
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation 3fff::/20
        || s[0] == 0x5f00 // SRv6 SIDs 5f00::/16
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site local fec0::/10 (deprecated)
}

/// Why `url` may not be a webhook target under `policy`: not http(s), no
/// host, credentials in it, an address literal webhooks may not reach, or a
/// port that is not allowed.
pub fn refuse(url: &str, policy: &TargetPolicy) -> Option<String> {
    let Ok(parsed) = reqwest::Url::parse(url) else { return Some("is not a valid URL".into()) };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Some("must be http:// or https://".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("must not carry credentials".into());
    }
    let internal = match parsed.host() {
        None => return Some("has no host".into()),
        Some(url::Host::Ipv4(ip)) => is_internal(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_internal(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if internal && !policy.allow_internal {
        return Some("points to a private, loopback or reserved address".into());
    }
    let port = parsed.port_or_known_default().unwrap_or(0);
    let port_free = internal && policy.allow_internal;
    if !port_free && !policy.port_allowed(port) {
        return Some(format!(
            "uses port {port}; webhooks may use only {} (CHARGELEDGER_WEBHOOK_ALLOWED_PORTS)",
            policy
                .allowed_ports
                .as_ref()
                .map(|p| p.iter().map(u16::to_string).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_ranges() {
        // (address, refused by default)
        let table: &[(&str, bool)] = &[
            ("8.8.8.8", false),
            ("1.1.1.1", false),
            ("192.0.1.1", false),
            ("192.88.98.1", false),
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("192.168.0.10", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.1.2.3", true),
            ("192.0.0.8", true),
            ("192.0.0.255", true),
            ("192.0.2.1", true),
            ("192.88.99.1", true),
            ("198.18.0.1", true),
            ("224.0.0.1", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("2606:4700::1111", false),
            ("2a00:1450::1", false),
            ("::1", true),
            ("::", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("fec0::1", true),
            ("feff::1", true),
            ("ff02::1", true),
            ("2002:808:808::1", true),
            ("2002::1", true),
            ("2001::1", true),
            ("2001:0:4136:e378::1", true),
            ("2001:db8::1", true),
            ("2001:1ff::1", true),
            ("64:ff9b:1::1", true),
            ("64:ff9b:1:ffff::1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::a00:1", true),
            ("64:ff9b::808:808", false),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.0.0.1", true),
            ("::ffff:192.0.0.1", true),
            ("::ffff:8.8.8.8", false),
            ("::8.8.8.8", true),
            ("::127.0.0.1", true),
            ("::ffff:0:8.8.8.8", true),
            ("100::1", true),
            ("3fff::1", true),
        ];
        for (address, refused) in table {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(is_internal(ip), *refused, "{address}");
        }
    }

    #[test]
    fn urls_and_ports() {
        let strict = TargetPolicy::default();
        let private = TargetPolicy { allow_internal: true, ..TargetPolicy::default() };
        let any_port = TargetPolicy { allow_internal: false, allowed_ports: None };
        let extra_port = TargetPolicy { allow_internal: false, allowed_ports: Some(vec![80, 443, 8443]) };
        // (url, refused by default, refused with internal allowed, refused with any port, with 8443 allowed)
        let table: &[(&str, bool, bool, bool, bool)] = &[
            ("https://hooks.example.com/in", false, false, false, false),
            ("http://hooks.example.com/in", false, false, false, false),
            ("https://hooks.example.com:443/in", false, false, false, false),
            ("http://hooks.example.com:80/in", false, false, false, false),
            ("https://hooks.example.com:8443/in", true, true, false, false),
            ("http://hooks.example.com:22/", true, true, false, true),
            ("http://hooks.example.com:6379/", true, true, false, true),
            ("https://8.8.8.8/in", false, false, false, false),
            ("https://8.8.8.8:25/in", true, true, false, true),
            ("http://127.0.0.1:8080/hook", true, false, true, true),
            ("http://127.0.0.1/hook", true, false, true, true),
            ("http://2130706433/", true, false, true, true),
            ("http://0x7f.1/", true, false, true, true),
            ("http://10.1.2.3/", true, false, true, true),
            ("http://169.254.169.254/latest/meta-data", true, false, true, true),
            ("http://[::1]:9000/", true, false, true, true),
            ("http://[::ffff:127.0.0.1]/", true, false, true, true),
            ("http://[::127.0.0.1]/", true, false, true, true),
            ("http://[64:ff9b::7f00:1]/", true, false, true, true),
            ("http://[64:ff9b:1::1]/", true, false, true, true),
            ("http://[2002:7f00:1::]/", true, false, true, true),
            ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", true, false, true, true),
            ("http://[fec0::1]/", true, false, true, true),
            ("http://192.0.0.170/", true, false, true, true),
            ("http://192.88.99.1/", true, false, true, true),
            ("http://[fd00::1]/", true, false, true, true),
            ("http://localhost:3000/", true, false, true, true),
            ("http://localhost./", true, false, true, true),
            ("http://api.localhost/", true, false, true, true),
            ("http://100.64.0.1/", true, false, true, true),
            ("ftp://example.com/", true, true, true, true),
            ("https://user:pw@example.com/", true, true, true, true),
            ("not a url", true, true, true, true),
        ];
        for (url, by_default, with_private, with_any, with_extra) in table {
            assert_eq!(refuse(url, &strict).is_some(), *by_default, "{url} (default)");
            assert_eq!(refuse(url, &private).is_some(), *with_private, "{url} (internal allowed)");
            assert_eq!(refuse(url, &any_port).is_some(), *with_any, "{url} (any port)");
            assert_eq!(refuse(url, &extra_port).is_some(), *with_extra, "{url} (8443 allowed)");
        }
        assert!(refuse("https://hooks.example.com:8443/", &strict).unwrap().contains("port 8443"));
    }
}
