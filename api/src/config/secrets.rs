//! The secret settings and the rules they must meet (ADR 0015).
//!
//! `CHARGELEDGER_JWT_SECRET` signs and checks HS256 tokens; anyone who knows it
//! can mint an admin token for any company, so every role and `token` refuse
//! to start with a secret that is unset, shorter than [`MIN_SECRET_BYTES`],
//! one of the values this project ever shipped or documented, or of too little
//! variety. `CHARGELEDGER_SECRETS_KEY` is the key of data at rest (sealed CPMS
//! credentials, the keyed fingerprints of idempotent requests): its own
//! setting, never derived from the JWT secret, so rotating the JWT secret
//! leaves stored data readable.

use secrecy::{ExposeSecret, SecretString};

use super::{Config, ConfigError};

/// Shortest accepted secret, in bytes (256 bits of key material at best).
pub const MIN_SECRET_BYTES: usize = 32;

/// The development secret of earlier versions: refused everywhere now.
pub const DEV_JWT_SECRET: &str = "chargeledger-development-secret-change-me";

/// Values this project shipped, documented or used in tests: public, so forgeable.
const KNOWN_SECRETS: &[&str] =
    &[DEV_JWT_SECRET, "change-me", "changeme", "secret", "test-secret", "cli-secret", "chargeledger"];

/// Why a secret is refused, or `None` when it is acceptable.
pub fn weakness(value: &str) -> Option<&'static str> {
    let trimmed = value.trim();
    if KNOWN_SECRETS.iter().any(|k| k.eq_ignore_ascii_case(trimmed)) {
        return Some("is a published default");
    }
    if value.len() < MIN_SECRET_BYTES {
        return Some("is shorter than 32 bytes");
    }
    let mut seen = [false; 256];
    value.bytes().for_each(|b| seen[b as usize] = true);
    if seen.iter().filter(|s| **s).count() < 8 {
        return Some("has fewer than 8 distinct characters");
    }
    None
}

const HOW: &str =
    "generate one with `openssl rand -hex 32` (./scripts/run.sh does it for you, into .chargeledger/secrets.env)";

impl Config {
    /// Refuses a missing or forgeable `CHARGELEDGER_JWT_SECRET` (every role and `token`).
    pub fn check_jwt_secret(&self) -> Result<(), ConfigError> {
        let secret = self.jwt_secret.expose_secret();
        if secret.is_empty() {
            return Err(ConfigError(format!("CHARGELEDGER_JWT_SECRET is not set: {HOW}")));
        }
        if let Some(why) = weakness(secret) {
            return Err(ConfigError(format!("CHARGELEDGER_JWT_SECRET {why}: refusing to start; {HOW}")));
        }
        Ok(())
    }

    /// Refuses a missing or weak `CHARGELEDGER_SECRETS_KEY`, and one equal to the
    /// JWT secret (the roles that handle requests: `api` and `serve`).
    pub fn check_secrets_key(&self) -> Result<(), ConfigError> {
        let Some(key) = &self.secrets_key else {
            return Err(ConfigError(format!(
                "CHARGELEDGER_SECRETS_KEY is not set (the key of CPMS credentials and request fingerprints, \
                 separate from the JWT secret): {HOW}"
            )));
        };
        if let Some(why) = weakness(key.expose_secret()) {
            return Err(ConfigError(format!("CHARGELEDGER_SECRETS_KEY {why}: refusing to start; {HOW}")));
        }
        if key.expose_secret() == self.jwt_secret.expose_secret() {
            return Err(ConfigError("CHARGELEDGER_SECRETS_KEY must differ from CHARGELEDGER_JWT_SECRET".into()));
        }
        Ok(())
    }

    /// The key of one purpose derived from `CHARGELEDGER_SECRETS_KEY`:
    /// HMAC-SHA-256(key, label), so purposes never share key bytes. Without a
    /// key (roles that do not serve requests) an all-zero key stands in; the
    /// roles that use it refuse to start without one.
    pub fn data_key(&self, label: &str) -> [u8; 32] {
        let key = self.secrets_key.as_ref().map(SecretString::expose_secret).unwrap_or_default();
        crate::extract::hmac_sha256(key.as_bytes(), label.as_bytes())
    }

    /// A random secret of 64 hex characters (what tests and `run.sh` use).
    pub fn random_secret() -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// The key of request fingerprints (`Idempotency-Key` replays).
    pub fn fingerprint_key(&self) -> [u8; 32] {
        self.data_key("chargeledger request fingerprint v1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_named() {
        assert_eq!(weakness(DEV_JWT_SECRET), Some("is a published default"));
        assert_eq!(weakness("short"), Some("is shorter than 32 bytes"));
        assert_eq!(weakness(&"ab".repeat(20)), Some("has fewer than 8 distinct characters"));
        assert_eq!(weakness("3f9a1c0e7b2d4a6f8e1c3b5d7f9a0c2e"), None);
    }
}
