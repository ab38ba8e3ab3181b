//! Pagar.me webhooks: whether one really comes from Pagar.me, and what it says.
//!
//! Pagar.me authenticates a webhook in two ways, either or both of which a
//! deployment configures: HTTP Basic credentials it was given for the webhook
//! URL, and an RS256 signature of the raw body in
//! `X-Webhook-Asymmetric-Signature`, checked against Pagar.me's public keys
//! (several during a key rotation). With neither configured, every webhook is
//! refused: an unauthenticated endpoint would let anyone mark a charge paid.

use axum::http::HeaderMap;
use base64::{engine::general_purpose, Engine};
use chrono::{DateTime, Utc};
use domain::payment::WebhookReceived;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey};
use rand::RngCore;
use serde_json::Value;
use sha2::Sha256;

use crate::payments::redact;

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Neither Basic credentials nor public keys are configured.
    #[error("no webhook credentials or public keys are configured")]
    NotConfigured,
    /// Basic credentials are configured and the `Authorization` header is
    /// missing or does not carry them.
    #[error("the Authorization header does not carry the configured credentials")]
    BasicMismatch,
    /// Public keys are configured and the signature header is missing.
    #[error("the X-Webhook-Asymmetric-Signature header is missing")]
    SignatureMissing,
    /// The signature header is not base64 (standard or URL-safe).
    #[error("the X-Webhook-Asymmetric-Signature header is not base64")]
    SignatureEncoding,
    /// No configured public key verifies the signature over the raw body.
    #[error("no configured public key verifies the signature of this body")]
    SignatureMismatch,
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The body has no string `id` (Pagar.me's hook id, which makes repeats harmless).
    #[error("a webhook has an id")]
    MissingId,
}

impl WebhookError {
    /// True when the webhook's sender was not shown to be Pagar.me (answer 401),
    /// false when an authentic webhook's body is unusable (answer 400).
    pub fn is_unauthenticated(&self) -> bool {
        !matches!(self, Self::InvalidJson(_) | Self::MissingId)
    }
}

/// Checks webhooks against the configured credentials. Build it once from the
/// configuration; [`WebhookVerifier::verify`] is cheap and never blocks.
pub struct WebhookVerifier {
    /// The whole `Authorization` header value Basic auth expects.
    basic: Option<String>,
    /// The public keys that may sign; `Some` (even empty, when no key in the
    /// PEM could be read) means a signature is required.
    keys: Option<Vec<DecodingKey>>,
    /// A random key for comparing credentials through their HMACs: equal-length
    /// digests compared without an early exit reveal nothing about the secret.
    compare_key: [u8; 32],
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("basic", &self.basic.as_ref().map(|_| "[redacted]"))
            .field("keys", &self.keys.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl WebhookVerifier {
    /// A verifier requiring Basic auth with `basic` (user, password) when given,
    /// and an RS256 signature by one of the `BEGIN PUBLIC KEY` blocks of
    /// `public_keys_pem` when given. Blocks that are not RSA public keys are
    /// skipped; if none is usable, every signature fails.
    pub fn new(basic: Option<(&str, &str)>, public_keys_pem: Option<&str>) -> Self {
        let basic = basic.map(|(user, password)| {
            format!("Basic {}", general_purpose::STANDARD.encode(format!("{user}:{password}")))
        });
        let keys = public_keys_pem.map(|pem| {
            pem.split_inclusive("-----END PUBLIC KEY-----")
                .filter(|block| block.contains("BEGIN PUBLIC KEY"))
                .filter_map(|block| DecodingKey::from_rsa_pem(block.trim().as_bytes()).ok())
                .collect()
        });
        let mut compare_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut compare_key);
        Self { basic, keys, compare_key }
    }

    /// Whether the webhook with these `headers` and this exact `body` (as
    /// received, before any parsing) comes from Pagar.me: every configured
    /// check must pass, Basic first.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
        if self.basic.is_none() && self.keys.is_none() {
            return Err(WebhookError::NotConfigured);
        }
        if let Some(expected) = &self.basic {
            let given = header(headers, "authorization").unwrap_or_default();
            if !self.same(given.as_bytes(), expected.as_bytes()) {
                return Err(WebhookError::BasicMismatch);
            }
        }
        if let Some(keys) = &self.keys {
            let signature = header(headers, "x-webhook-asymmetric-signature").ok_or(WebhookError::SignatureMissing)?;
            let raw = signature.trim().trim_start_matches("sha256=");
            // Pagar.me sends standard base64; URL-safe is accepted too.
            let bytes = general_purpose::STANDARD
                .decode(raw)
                .or_else(|_| general_purpose::URL_SAFE_NO_PAD.decode(raw))
                .map_err(|_| WebhookError::SignatureEncoding)?;
            // jsonwebtoken's verifier takes the signature in JWS encoding.
            let signature = general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let verified = keys
                .iter()
                .any(|key| jsonwebtoken::crypto::verify(&signature, body, key, Algorithm::RS256).unwrap_or(false));
            if !verified {
                return Err(WebhookError::SignatureMismatch);
            }
        }
        Ok(())
    }

    /// Compares two secrets in time that does not depend on where they differ.
    fn same(&self, a: &[u8], b: &[u8]) -> bool {
        let digest = |message: &[u8]| {
            <Hmac<Sha256> as Mac>::new_from_slice(&self.compare_key).ok().map(|mut mac| {
                mac.update(message);
                mac.finalize().into_bytes()
            })
        };
        match (digest(a), digest(b)) {
            (Some(a), Some(b)) => a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0,
            _ => false,
        }
    }
}

/// A header as text; one that is not visible ASCII counts as absent.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// What a webhook says, as far as the payment service needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedWebhook {
    /// Pagar.me's hook id (`hook_…`): the same hook delivered twice has it twice.
    pub hook_id: String,
    /// `charge.paid`, `order.paid`, …; empty when the hook names none.
    pub event_type: String,
    /// The charge it is about: `data.id` for `charge.*`, the order's first
    /// charge for `order.*`; `None` when the hook carries no charge.
    pub charge_id: Option<String>,
    /// The whole hook with card data, tokens and documents removed, as the log keeps it.
    pub body: Value,
}

impl ParsedWebhook {
    /// The domain's record of this hook, received at `at`.
    pub fn into_received(self, at: DateTime<Utc>) -> WebhookReceived {
        WebhookReceived {
            hook_id: self.hook_id,
            event_type: self.event_type,
            charge_id: self.charge_id,
            body: self.body,
            at,
        }
    }
}

/// Reads a webhook body (after [`WebhookVerifier::verify`] accepted it).
pub fn parse(body: &[u8]) -> Result<ParsedWebhook, WebhookError> {
    let hook: Value = serde_json::from_slice(body).map_err(WebhookError::InvalidJson)?;
    let hook_id = hook.get("id").and_then(Value::as_str).ok_or(WebhookError::MissingId)?.to_owned();
    // V5 names the event `type`; older payloads used `event`.
    let event_type =
        hook.get("type").or_else(|| hook.get("event")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let data = hook.get("data");
    // charge.* carry the charge; order.* carry the order with its charges.
    let charge = if event_type.starts_with("order.") {
        data.and_then(|d| d.pointer("/charges/0/id"))
    } else {
        data.and_then(|d| d.get("id"))
    };
    let charge_id = charge.and_then(Value::as_str).map(str::to_owned);
    Ok(ParsedWebhook { hook_id, event_type, charge_id, body: redact(&hook) })
}

#[cfg(test)]
mod tests;
