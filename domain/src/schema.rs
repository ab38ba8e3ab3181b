//! JSON Schemas of every event type, generated from the Rust types.
//!
//! `schemas/events/<type>.v<version>.schema.json` are these, committed; a test
//! fails when the code and the committed files disagree, so an event cannot
//! change shape without a new schema version (and an upcaster for the old one).

use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

use crate::{
    charger::{command::OcppCommandEvent, ChargerEvent, OcppFrameEvent},
    infrastructure::{CpmsConfigEvent, CpmsMappingEvent, CpmsRegistryEvent},
    log::LogEvent,
    payment::PaymentIntentEvent,
    session::SessionEvent,
    terminal::TerminalEvent,
    wallet::WalletEvent,
    webhook::{DeliveryEvent, WebhookEvent},
    DomainEvent,
};

/// One event type's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchema {
    /// Event type (`terminal.registered`).
    pub event_type: String,
    /// Schema version.
    pub version: u32,
    /// The JSON Schema (2020-12) of the payload.
    pub schema: Value,
}

impl EventSchema {
    /// File name under `schemas/events/`.
    pub fn file_name(&self) -> String {
        format!("{}.v{}.schema.json", self.event_type, self.version)
    }
}

/// The variants serde knows for an event enum, with their payload schemas.
fn variants<E: DomainEvent + JsonSchema>() -> Vec<EventSchema> {
    let root: Schema = schemars::schema_for!(E);
    let root = root.to_value();
    let defs = root.get("$defs").cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let variants = root.get("oneOf").and_then(Value::as_array).cloned().unwrap_or_default();
    variants
        .iter()
        .filter_map(|variant| {
            let props = variant.get("properties")?;
            let event_type = props.get("type")?.get("const")?.as_str()?.to_owned();
            let data = props.get("data")?.clone();
            let version = E::current_version(&event_type);
            let mut schema = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": format!("urn:chargeledger:event:{event_type}:v{version}"),
                "title": format!("{event_type} (schema version {version})"),
            });
            if let (Value::Object(target), Value::Object(source)) = (&mut schema, data) {
                target.extend(source);
                target.insert("$defs".into(), defs.clone());
            }
            Some(EventSchema { event_type, version, schema })
        })
        .collect()
}

/// The type names each event enum declares in [`DomainEvent::TYPES`].
pub fn declared_types() -> Vec<&'static str> {
    [
        TerminalEvent::TYPES,
        LogEvent::TYPES,
        ChargerEvent::TYPES,
        OcppFrameEvent::TYPES,
        OcppCommandEvent::TYPES,
        PaymentIntentEvent::TYPES,
        WalletEvent::TYPES,
        SessionEvent::TYPES,
        CpmsMappingEvent::TYPES,
        CpmsRegistryEvent::TYPES,
        CpmsConfigEvent::TYPES,
        WebhookEvent::TYPES,
        DeliveryEvent::TYPES,
    ]
    .concat()
}

/// Superseded versions, frozen as they were committed when current (ADR 0007):
/// their events stay in the log, read through the upcasters.
const FROZEN: &[(&str, u32, &str)] =
    &[("charge_session.started", 1, include_str!("../../schemas/events/charge_session.started.v1.schema.json"))];

/// The superseded versions' schemas.
pub fn frozen() -> Vec<EventSchema> {
    FROZEN
        .iter()
        .filter_map(|(event_type, version, text)| {
            let schema = serde_json::from_str(text).ok()?;
            Some(EventSchema { event_type: (*event_type).to_owned(), version: *version, schema })
        })
        .collect()
}

/// Every event type of the platform with its current schema, and the frozen
/// schemas of superseded versions.
pub fn all() -> Vec<EventSchema> {
    let mut all = variants::<TerminalEvent>();
    all.extend(variants::<LogEvent>());
    all.extend(variants::<ChargerEvent>());
    all.extend(variants::<OcppFrameEvent>());
    all.extend(variants::<OcppCommandEvent>());
    all.extend(variants::<PaymentIntentEvent>());
    all.extend(variants::<WalletEvent>());
    all.extend(variants::<SessionEvent>());
    all.extend(variants::<CpmsMappingEvent>());
    all.extend(variants::<CpmsRegistryEvent>());
    all.extend(variants::<CpmsConfigEvent>());
    all.extend(variants::<WebhookEvent>());
    all.extend(variants::<DeliveryEvent>());
    all.extend(frozen());
    all
}

/// Decodes a stored example of any event type (checks it deserializes).
pub fn decode_example(event_type: &str, version: u32, payload: Value) -> Result<(), crate::EventDecodeError> {
    match event_type.split_once('.').map(|(category, _)| category) {
        Some("terminal") => TerminalEvent::from_record(event_type, version, payload).map(drop),
        Some("log") => LogEvent::from_record(event_type, version, payload).map(drop),
        Some("charger") => ChargerEvent::from_record(event_type, version, payload).map(drop),
        Some("ocpp") => OcppFrameEvent::from_record(event_type, version, payload).map(drop),
        Some("payment_intent") => PaymentIntentEvent::from_record(event_type, version, payload).map(drop),
        Some("charge_session") => SessionEvent::from_record(event_type, version, payload).map(drop),
        Some("wallet") => WalletEvent::from_record(event_type, version, payload).map(drop),
        Some("ocpp_command") => OcppCommandEvent::from_record(event_type, version, payload).map(drop),
        Some("cpms_mapping") => CpmsMappingEvent::from_record(event_type, version, payload).map(drop),
        Some("cpms_registry") => CpmsRegistryEvent::from_record(event_type, version, payload).map(drop),
        Some("cpms_config") => CpmsConfigEvent::from_record(event_type, version, payload).map(drop),
        Some("webhook") => WebhookEvent::from_record(event_type, version, payload).map(drop),
        Some("webhook_delivery") => DeliveryEvent::from_record(event_type, version, payload).map(drop),
        _ => Err(crate::EventDecodeError::UnknownType(event_type.to_owned())),
    }
}

/// Fields that never leave the platform: published copies (Kafka topics,
/// webhook bodies) carry `null` instead.
const PRIVATE_FIELDS: &[(&str, &str)] =
    &[("terminal.registered", "passwordHash"), ("terminal.charger_credentials_set", "passwordHash")];

/// The payload of an event as published outside the platform (Kafka,
/// webhooks): private fields (the charger password hash) are `null`.
/// Borrows the payload unless the type has private fields (the relay's hot path).
pub fn for_publication<'a>(event_type: &str, payload: &'a Value) -> std::borrow::Cow<'a, Value> {
    let private: Vec<&str> = PRIVATE_FIELDS.iter().filter(|(t, _)| *t == event_type).map(|(_, f)| *f).collect();
    if private.is_empty() {
        return std::borrow::Cow::Borrowed(payload);
    }
    let mut out = payload.clone();
    if let Value::Object(map) = &mut out {
        for field in private {
            if let Some(v) = map.get_mut(field) {
                *v = Value::Null;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod publication_tests {
    use serde_json::json;

    #[test]
    fn the_password_hash_is_not_published() {
        let p = json!({"terminalId": "T", "passwordHash": "$argon2id$..."});
        assert_eq!(super::for_publication("terminal.registered", &p)["passwordHash"], json!(null));
        assert_eq!(super::for_publication("terminal.registered", &p)["terminalId"], "T");
        assert_eq!(*super::for_publication("terminal.status_changed", &p), p);
        let rotated = json!({"securityProfile": 1, "passwordHash": "$argon2id$...", "setAt": "2026-12-02T00:00:00Z"});
        let published = super::for_publication("terminal.charger_credentials_set", &rotated);
        assert_eq!((published["passwordHash"].clone(), published["securityProfile"].clone()), (json!(null), json!(1)));
    }
}
