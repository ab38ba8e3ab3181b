//! The types a setting may have, and how each reads its text.
//!
//! Every layer (defaults, file, environment) hands a setting over as text
//! (a TOML number or boolean is written back as its text first), and the
//! setting's type reads it with [`SettingValue::parse`]: one reading for every
//! layer, the same as the environment always had (`FromStr`, so `true`/`false`,
//! decimal integers, `host:port`, uuids).

use std::{fmt, net::SocketAddr, str::FromStr};

use secrecy::SecretString;

/// A type a setting may have.
pub trait SettingValue: Sized {
    /// Whether the value is a secret: never printed (`Debug`, errors, `--help`).
    const SECRET: bool = false;
    /// Reads the value, or says why it cannot (without repeating it).
    fn parse(raw: &str) -> Result<Self, String>;
}

/// Plain `FromStr` types: what `str::parse` accepts.
macro_rules! from_str_values {
    ($($ty:ty),*) => {$(
        impl SettingValue for $ty {
            fn parse(raw: &str) -> Result<Self, String> {
                raw.parse().map_err(|e: <$ty as FromStr>::Err| e.to_string())
            }
        }
    )*};
}

from_str_values!(String, bool, u32, u64, i32, i64, usize, SocketAddr, uuid::Uuid);

/// A secret string (a key, a password, a URL with credentials) of at least
/// `MIN` bytes.
#[derive(Clone)]
pub struct Secret<const MIN: usize = 0>(pub SecretString);

/// A secret key of at least 32 bytes.
pub type Key = Secret<32>;

impl<const MIN: usize> SettingValue for Secret<MIN> {
    const SECRET: bool = true;
    fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() < MIN {
            return Err(format!("must be at least {MIN} bytes"));
        }
        Ok(Self(SecretString::from(raw)))
    }
}

impl<const MIN: usize> fmt::Debug for Secret<MIN> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A database URL: the connection string is needed in the clear (tools pass it
/// on), so it stays a `String`, but its password is never printed.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl SettingValue for DatabaseUrl {
    const SECRET: bool = true;
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&without_password(&self.0), f)
    }
}

/// `scheme://user:password@host/…` with the password replaced; a string that
/// is not such a URL is replaced whole when it holds an `@` (it may be one).
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') { "[REDACTED]".into() } else { url.to_owned() };
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:[REDACTED]@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// A number that must be at least `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtLeast<const N: u64>(pub u64);

impl<const N: u64> SettingValue for AtLeast<N> {
    fn parse(raw: &str) -> Result<Self, String> {
        let n: i128 = raw.trim().parse().map_err(|e: std::num::ParseIntError| e.to_string())?;
        if n < i128::from(N) {
            return Err(format!("must be at least {N}"));
        }
        u64::try_from(n).map(Self).map_err(|_| "is too large".to_owned())
    }
}

/// A comma-separated list of milliseconds (`5000,30000`), not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Millis(pub Vec<u64>);

impl SettingValue for Millis {
    fn parse(raw: &str) -> Result<Self, String> {
        let ms: Result<Vec<u64>, _> = raw.split(',').map(|v| v.trim().parse::<u64>()).collect();
        match ms {
            Ok(ms) if !ms.is_empty() => Ok(Self(ms)),
            _ => Err("must be a comma-separated list of milliseconds".into()),
        }
    }
}

impl Millis {
    /// The delays.
    pub fn durations(&self) -> Vec<std::time::Duration> {
        self.0.iter().copied().map(std::time::Duration::from_millis).collect()
    }
}

/// `80,443` → those ports; `*` → any port (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports(pub Option<Vec<u16>>);

impl SettingValue for Ports {
    fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self(None));
        }
        let ports: Result<Vec<u16>, _> = raw.split(',').map(|p| p.trim().parse::<u16>()).collect();
        match ports {
            Ok(ports) if !ports.is_empty() && !ports.contains(&0) => Ok(Self(Some(ports))),
            _ => Err("must be * or a comma-separated list of ports".into()),
        }
    }
}

/// `k=v,k=v` (extra librdkafka properties). Values may be passwords
/// (`sasl.password`), so `Debug` shows the keys only.
#[derive(Clone, PartialEq, Eq)]
pub struct Properties(pub Vec<(String, String)>);

impl SettingValue for Properties {
    const SECRET: bool = true;
    fn parse(raw: &str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                // Not echoed: the entry may be a password written without its key.
                return Err(format!("entry {} is not key=value", pairs.len() + 1));
            };
            pairs.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Self(pairs))
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        keys_only(&self.0, f)
    }
}

/// `[(key, "[REDACTED]"), …]`: what `Debug` shows of key/value pairs that may hold passwords.
pub fn keys_only(pairs: &[(String, String)], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_map().entries(pairs.iter().map(|(k, _)| (k, "[REDACTED]"))).finish()
}

/// A Kafka topic prefix: `[a-zA-Z0-9._-]+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPrefix(pub String);

impl SettingValue for TopicPrefix {
    fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty() && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err("may hold only [a-zA-Z0-9._-]".into());
        }
        Ok(Self(raw.to_owned()))
    }
}

/// One of a fixed set of words.
macro_rules! choice {
    ($(#[doc = $doc:literal])* $name:ident: $($word:literal)|+) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl SettingValue for $name {
            fn parse(raw: &str) -> Result<Self, String> {
                const WORDS: &[&str] = &[$($word),+];
                if WORDS.contains(&raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(format!("must be {}", WORDS.join(" or ")))
                }
            }
        }
    };
}

choice!(
    /// `text` or `json` logs.
    LogFormat: "text" | "json"
);
choice!(
    /// The payment gateway.
    Gateway: "simulator" | "pagarme"
);
