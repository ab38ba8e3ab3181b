//! Adapter credentials, sealed at rest.
//!
//! Values never enter the log (it is published to analysts) nor a read model:
//! they live in `cpms_credentials`, one row per (company, adapter, name),
//! written in the transaction that appends the `cpms_config.adapter_configured`
//! event naming them, and deleted when removed. Each value is sealed with
//! AES-256-GCM under a key derived (HKDF-SHA-256) from the data key
//! (`CHARGELEDGER_SECRETS_KEY`, its own setting: never the JWT secret, so
//! rotating the JWT secret leaves credentials readable; ADR 0015); the
//! company, adapter and name are the associated data, so a sealed value cannot
//! be moved to another row and still open.

use std::collections::BTreeMap;

use ring::{
    aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN},
    hkdf,
    rand::{SecureRandom, SystemRandom},
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use domain::infrastructure::AdapterType;

/// Prefix of the sealed format: `v1:<hex nonce>:<hex ciphertext and tag>`.
const FORMAT: &str = "v1";

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The random source or the cipher failed.
    #[error("the credential could not be sealed")]
    Seal,
    /// Not sealed by this key (another data key), or not for this row.
    #[error("the credential could not be opened (was CHARGELEDGER_SECRETS_KEY changed?)")]
    Open,
}

/// Seals and opens credential values.
pub struct CredentialCipher {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialCipher(AES-256-GCM)")
    }
}

/// Where a value belongs: bound into its seal as associated data.
fn context(company: Uuid, adapter: AdapterType, name: &str) -> Vec<u8> {
    format!("chargeledger cpms credential\x1f{company}\x1f{adapter}\x1f{name}").into_bytes()
}

impl CredentialCipher {
    /// The cipher keyed from the data key (`CHARGELEDGER_SECRETS_KEY`).
    pub fn derive(secret: &[u8]) -> Result<Self, CredentialError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"chargeledger cpms credentials").extract(secret);
        let okm = prk.expand(&[b"aes-256-gcm v1"], &aead::AES_256_GCM).map_err(|_| CredentialError::Seal)?;
        Ok(Self { key: LessSafeKey::new(UnboundKey::from(okm)), random: SystemRandom::new() })
    }

    /// Seals a value for its row.
    pub fn seal(
        &self,
        company: Uuid,
        adapter: AdapterType,
        name: &str,
        value: &SecretString,
    ) -> Result<String, CredentialError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| CredentialError::Seal)?;
        let mut data = value.expose_secret().as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context(company, adapter, name)),
                &mut data,
            )
            .map_err(|_| CredentialError::Seal)?;
        Ok(format!("{FORMAT}:{}:{}", hex::encode(nonce), hex::encode(data)))
    }

    /// Opens a value sealed for this row.
    pub fn open(
        &self,
        company: Uuid,
        adapter: AdapterType,
        name: &str,
        sealed: &str,
    ) -> Result<SecretString, CredentialError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT), Some(nonce), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CredentialError::Open);
        };
        let nonce: [u8; NONCE_LEN] =
            hex::decode(nonce).ok().and_then(|n| n.try_into().ok()).ok_or(CredentialError::Open)?;
        let mut data = hex::decode(data).map_err(|_| CredentialError::Open)?;
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(context(company, adapter, name)), &mut data)
            .map_err(|_| CredentialError::Open)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| CredentialError::Open)?;
        Ok(SecretString::from(text))
    }
}

/// Stores (or, with `None`, deletes) one sealed value, inside the transaction
/// that appends the event naming it.
pub(crate) async fn write(
    conn: &mut PgConnection,
    company: Uuid,
    adapter: AdapterType,
    name: &str,
    sealed: Option<&str>,
    config_version: i64,
) -> Result<(), sqlx::Error> {
    match sealed {
        Some(sealed) => {
            sqlx::query(
                "INSERT INTO cpms_credentials (company_id, adapter_type, name, sealed, config_version) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (company_id, adapter_type, name) DO UPDATE SET sealed = $4, config_version = $5, updated_at = now()",
            )
            .bind(company)
            .bind(adapter.as_str())
            .bind(name)
            .bind(sealed)
            .bind(config_version)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM cpms_credentials WHERE company_id = $1 AND adapter_type = $2 AND name = $3")
                .bind(company)
                .bind(adapter.as_str())
                .bind(name)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

/// The company's credentials for an adapter, opened. A value that no longer
/// opens (the data key changed) is left out and named in the second list.
pub async fn load(
    pool: &PgPool,
    cipher: &CredentialCipher,
    company: Uuid,
    adapter: AdapterType,
) -> Result<(BTreeMap<String, SecretString>, Vec<String>), sqlx::Error> {
    let rows = sqlx::query("SELECT name, sealed FROM cpms_credentials WHERE company_id = $1 AND adapter_type = $2")
        .bind(company)
        .bind(adapter.as_str())
        .fetch_all(pool)
        .await?;
    let (mut opened, mut unreadable) = (BTreeMap::new(), Vec::new());
    for row in rows {
        let name: String = row.try_get("name")?;
        let sealed: String = row.try_get("sealed")?;
        match cipher.open(company, adapter, &name, &sealed) {
            Ok(value) => {
                opened.insert(name, value);
            }
            Err(_) => unreadable.push(name),
        }
    }
    Ok((opened, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_row_and_key() {
        let cipher = CredentialCipher::derive(b"server secret").unwrap_or_else(|e| panic!("{e}"));
        let company = Uuid::from_u128(7);
        let value = SecretString::from("tok_live_123");
        let sealed = cipher.seal(company, AdapterType::Ocpp, "token", &value).unwrap_or_else(|e| panic!("{e}"));
        assert!(!sealed.contains("tok_live_123"));
        assert!(sealed.starts_with("v1:"));
        let again = cipher.seal(company, AdapterType::Ocpp, "token", &value).unwrap_or_default();
        assert_ne!(sealed, again, "a fresh nonce every time");
        let opened = cipher.open(company, AdapterType::Ocpp, "token", &sealed).map(|s| s.expose_secret().to_owned());
        assert_eq!(opened, Ok("tok_live_123".to_owned()));
        assert!(cipher.open(Uuid::from_u128(8), AdapterType::Ocpp, "token", &sealed).is_err(), "another company");
        assert!(cipher.open(company, AdapterType::Ocpp, "password", &sealed).is_err(), "another name");
        let other = CredentialCipher::derive(b"another secret").unwrap_or_else(|e| panic!("{e}"));
        assert!(other.open(company, AdapterType::Ocpp, "token", &sealed).is_err(), "another key");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(cipher.open(company, AdapterType::Ocpp, "token", &tampered).is_err(), "tampered");
    }
}
