//! What leaves the platform (ADR 0018): every event published outside —
//! a Kafka record built by the relay, a webhook body built by the delivery
//! worker — goes through [`Redactor::publish`], one function for both.
//!
//! - A policy keyed by event type and field path ([`POLICY`]) says what each
//!   known personal or secret field becomes: dropped (`null`), a keyed
//!   pseudonym, or scanned as an OCPP payload, an OCPP frame or a payment
//!   gateway body.
//! - A generic recursive scan then runs over the whole payload of every event
//!   type, so a field the table does not name (a new event type, a nested
//!   body) is still caught by its key: id tags become pseudonyms; CPFs,
//!   e-mails, passwords and their hashes, card and network tokens are dropped.
//!   In free-form bodies (OCPP payloads, gateway bodies) strings shaped like an
//!   e-mail address or a valid CPF are dropped whatever their key, and the
//!   values of secret-looking charger configuration keys (`AuthorizationKey`,
//!   `BasicAuthPassword`, anything named like a password, secret or key) are
//!   `[redacted]`.
//! - Any value hidden anywhere in an event is also replaced where it reappears
//!   inside other text of the same event (an id tag quoted in a rejection
//!   description, a CALLERROR text).
//!
//! Pseudonyms are `tag_` and 16 hex digits of HMAC-SHA256 under the
//! publication key (`CHARGELEDGER_PUBLICATION_KEY`, never the JWT secret): the
//! same id tag always maps to the same pseudonym, so analysts can correlate the
//! sessions of one tag across 1.6 `idTag`, 2.0.1 `idToken`, session events and
//! raw frames without learning the tag; without the key it cannot be reversed
//! or checked against guesses.

mod scan;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::store::RecordedEvent;

/// What a value shown in a free-form payload becomes when it is secret.
pub const REDACTED: &str = "[redacted]";

/// How a field is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `null`.
    Drop,
    /// A keyed pseudonym (`tag_…`), for id tags / id tokens.
    Pseudonym,
    /// An OCPP message payload (commands, command answers).
    OcppPayload,
    /// The text of an OCPP-J frame: parsed, redacted, re-serialized (`null`
    /// when it is not JSON).
    OcppFrame,
    /// A payment gateway request, response or webhook body.
    GatewayBody,
}

/// The per-event-type policy: (event type, dotted field path, rule). Fields of
/// every other event type are still covered by the generic scan.
pub const POLICY: &[(&str, &str, Rule)] = &[
    ("terminal.registered", "passwordHash", Rule::Drop),
    ("charge_session.started", "cpf", Rule::Drop),
    ("charge_session.started", "email", Rule::Drop),
    ("charge_session.started", "idTag", Rule::Pseudonym),
    ("charge_session.receipt_sent", "to", Rule::Drop),
    ("charger.transaction_started", "idTag", Rule::Pseudonym),
    ("payment_intent.created", "customer.cpf", Rule::Drop),
    ("payment_intent.created", "customer.email", Rule::Drop),
    ("payment_intent.created", "customer.name", Rule::Drop),
    ("payment_intent.gateway_exchanged", "request", Rule::GatewayBody),
    ("payment_intent.gateway_exchanged", "response", Rule::GatewayBody),
    ("payment_intent.webhook_received", "body", Rule::GatewayBody),
    ("ocpp.frame_received", "raw", Rule::OcppFrame),
    ("ocpp.frame_sent", "raw", Rule::OcppFrame),
    ("ocpp_command.requested", "payload", Rule::OcppPayload),
    ("ocpp_command.answered", "response", Rule::OcppPayload),
];

/// The publication key and the redaction it drives. Cheap to clone; its
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct Redactor {
    key: Arc<[u8]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Default for Redactor {
    /// A random key: pseudonyms are stable only within this process.
    fn default() -> Self {
        Self::random()
    }
}

impl Redactor {
    /// Pseudonyms under `key` (at least 32 bytes are expected; the
    /// configuration enforces it).
    pub fn new(key: &[u8]) -> Self {
        Self { key: Arc::from(key) }
    }

    /// A fresh random key.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self::new(&key)
    }

    /// The pseudonym of an id tag / id token: `tag_` and 16 hex digits of
    /// HMAC-SHA256(key, "chargeledger/id-tag/v1" ‖ 0 ‖ tag). 20 characters,
    /// so it still fits an OCPP 1.6 `idTag`.
    pub fn pseudonym(&self, tag: &str) -> String {
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&self.key) else { return REDACTED.into() };
        mac.update(b"chargeledger/id-tag/v1\0");
        mac.update(tag.as_bytes());
        format!("tag_{}", hex::encode(&mac.finalize().into_bytes()[..8]))
    }

    /// A stream id as published (Kafka key, `ce_subject`, webhook `subject`):
    /// a wallet's stream names its customer (`wallet-<company>:<customerId>`),
    /// and customer ids may be e-mails or documents, so the customer part is
    /// replaced by a keyed pseudonym (deterministic: per-key order holds).
    pub fn stream_id(&self, stream_id: &str) -> String {
        match stream_id.strip_prefix("wallet-").and_then(|rest| rest.split_once(':')) {
            Some((company, customer)) => {
                let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&self.key) else { return REDACTED.into() };
                mac.update(b"chargeledger/customer/v1\0");
                mac.update(customer.as_bytes());
                format!("wallet-{company}:customer_{}", hex::encode(&mac.finalize().into_bytes()[..8]))
            }
            None => stream_id.to_owned(),
        }
    }

    /// The payload of an event as published (Kafka value, webhook `data`).
    pub fn publish(&self, event_type: &str, payload: &Value) -> Value {
        // Fields other modules declare private stay private too.
        let mut out = domain::schema::for_publication(event_type, payload).into_owned();
        let policy = POLICY.iter().filter(|(t, _, _)| *t == event_type).map(|(_, p, r)| (*p, *r)).collect();
        let mut scan = scan::Scan::new(self, policy);
        scan.walk(&mut out, scan::Mode::Typed, "");
        scan.finish(&mut out);
        out
    }

    /// An OCPP message payload as published (the scan commands and frames get).
    pub fn ocpp_payload(&self, payload: &Value) -> Value {
        let mut out = payload.clone();
        let mut scan = scan::Scan::new(self, Vec::new());
        scan.apply(Rule::OcppPayload, &mut out, scan::Mode::Typed);
        scan.finish(&mut out);
        out
    }
}

/// The body of a webhook delivery of a logged event (Standard Webhooks
/// payload shape), `data` redacted by [`Redactor::publish`].
pub fn webhook_body(
    redactor: &Redactor,
    event_type: &str,
    event_id: Uuid,
    recorded_at: DateTime<Utc>,
    stream_id: &str,
    payload: &Value,
) -> Value {
    json!({
        "type": event_type,
        "timestamp": recorded_at,
        "id": event_id,
        "subject": redactor.stream_id(stream_id),
        "data": redactor.publish(event_type, payload),
    })
}

/// [`webhook_body`] of a recorded event.
pub fn webhook_body_of(redactor: &Redactor, event: &RecordedEvent) -> Value {
    webhook_body(redactor, &event.event_type, event.event_id, event.recorded_at, &event.stream_id, &event.payload)
}

/// Whether a configuration key or variable name looks secret: its value is
/// `[redacted]` wherever it is published.
pub fn secret_looking(name: &str) -> bool {
    let n: String = name.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    const MARKERS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "authorizationkey",
        "authkey",
        "privatekey",
        "apikey",
        "accesskey",
        "token",
        "credential",
        "psk",
    ];
    MARKERS.iter().any(|m| n.contains(m))
}

#[cfg(test)]
mod tests;
