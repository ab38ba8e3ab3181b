//! The rules the server enforces on request bodies, written into the
//! document's schemas (issue 13): lengths, patterns, enums, ranges.
//!
//! The values come from the domain's own constants and enums, so a limit
//! changed there changes here. Because [`super::bodies`] checks every body
//! against these schemas before the handler sees it, what is written here is
//! also what the server refuses (422): the schema cannot be laxer than the
//! server, and the server's later checks are never stricter for a rule the
//! schema can express. Rules JSON Schema cannot say (CPF check digits, a
//! product of two fields, what a referenced resource allows) are in the
//! descriptions.

use domain::{
    charger::requests::csms_actions,
    infrastructure::{
        config::{MAX_CREDENTIALS, MAX_CREDENTIAL_BYTES, RETRIES, TIMEOUT_MS},
        mapping::MAX_CHARGE_POINTS,
        AdapterType,
    },
    payment::PaymentMethod,
    terminal::{ConnectorType, HealthKind, OcppVersion, Severity},
};
use serde_json::{json, Map, Value};

mod between;
mod shapes;

pub use self::shapes::pattern_in_words;
pub use self::shapes::TERMINAL_ID;
use self::shapes::{cpf, email, free_text, text, token, webhook_url};

fn range(min: i64, max: i64) -> Value {
    json!({"minimum": min, "maximum": max})
}

/// The wire names of a serde enum, read from its JSON Schema (every `const`
/// and `enum` string in it).
fn names<T: schemars::JsonSchema>() -> Vec<String> {
    fn collect(value: &Value, into: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("const", Value::String(name)) => into.push(name.clone()),
                        ("enum", Value::Array(names)) => {
                            into.extend(names.iter().filter_map(Value::as_str).map(str::to_owned));
                        }
                        _ => collect(value, into),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(item, into)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    collect(&schemars::schema_for!(T).to_value(), &mut found);
    found.dedup();
    found
}

fn one_of(names: impl IntoIterator<Item = impl Into<String>>) -> Value {
    json!({"enum": names.into_iter().map(Into::into).collect::<Vec<String>>()})
}

/// A free-form object (an OCPP payload, a wallet token). Its strings and keys
/// must hold no U+0000 (Postgres `jsonb` cannot store it): the server refuses
/// one anywhere in a body (422, [`super::bodies::nul_paths`]). The rule is in
/// the description, not a recursive schema, which client generators cannot
/// read.
fn free_object() -> Value {
    json!({"description": "A JSON object; no string or key in it may hold U+0000 (422)."})
}

/// The filters `domain::webhook::filter_valid` accepts: every declared event
/// type, each category's `<category>.*`, and `*`.
fn event_filters() -> Vec<String> {
    let types = domain::schema::declared_types();
    let mut filters: Vec<String> = vec!["*".to_owned()];
    for t in &types {
        if let Some((category, _)) = t.split_once('.') {
            let wildcard = format!("{category}.*");
            if !filters.contains(&wildcard) {
                filters.push(wildcard);
            }
        }
    }
    filters.extend(types.iter().map(|t| (*t).to_owned()));
    filters.retain(|f| domain::webhook::filter_valid(f, &types));
    filters
}

/// Every OCPP action a charger command may name (the union of both versions;
/// which one a charger takes depends on its version: the description says so).
fn actions() -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for version in [OcppVersion::V16, OcppVersion::V201] {
        for action in csms_actions(version) {
            if !all.iter().any(|a| a == action) {
                all.push((*action).to_owned());
            }
        }
    }
    all
}

/// `(schema, property, keywords)`: the keywords are merged into the property.
fn rules() -> Vec<(&'static str, &'static str, Value)> {
    let profile = one_of_ints(&[0, 1, 2]);
    let password = json!({"pattern": "^[ -~]{16,40}$"});
    let station = json!({"minimum": 1});
    let amount = range(1, 10_000_000);
    let method = one_of(names::<PaymentMethod>());
    let charge_points = json!({
        "minItems": 1, "maxItems": MAX_CHARGE_POINTS, "uniqueItems": true,
        "items": {"pattern": TERMINAL_ID},
    });
    let adapter = one_of(AdapterType::ALL.iter().map(|a| a.as_str()));
    let filters = json!({"maxItems": 50, "items": one_of(event_filters())});
    let url = json!({"maxLength": 2048, "pattern": webhook_url()});
    vec![
        (
            "RegisterTerminalRequest",
            "id",
            json!({"pattern": TERMINAL_ID, "not": {"pattern": "^[Ss][Tt][Aa][Tt][Ss]$"}}),
        ),
        ("RegisterTerminalRequest", "stationId", station.clone()),
        ("RegisterTerminalRequest", "vendor", text(50)),
        ("RegisterTerminalRequest", "model", text(50)),
        ("RegisterTerminalRequest", "ocppVersion", one_of(names::<OcppVersion>())),
        ("RegisterTerminalRequest", "connectors", json!({"minItems": 1, "maxItems": 32})),
        ("RegisterTerminalRequest", "chargerPassword", password.clone()),
        ("RegisterTerminalRequest", "securityProfile", profile.clone()),
        ("ConnectorRequest", "id", range(1, i64::from(i32::MAX))),
        ("ConnectorRequest", "type", one_of(names::<ConnectorType>())),
        ("ConnectorRequest", "maxPowerW", range(1, 3_750_000)),
        ("ChargerPasswordRequest", "password", password),
        ("ChargerPasswordRequest", "securityProfile", profile),
        ("HealthEventRequest", "kind", one_of(names::<HealthKind>())),
        ("HealthEventRequest", "severity", one_of(names::<Severity>())),
        ("HealthEventRequest", "code", text(50)),
        ("HealthEventRequest", "message", text(500)),
        ("StatusRequest", "status", one_of(["Available", "Unavailable", "Faulted"])),
        ("StatusRequest", "reason", text(500)),
        ("CommandRequest", "action", one_of(actions())),
        ("CommandRequest", "payload", free_object()),
        ("CommandRequest", "timeoutMs", range(100, 600_000)),
        ("RemoteStartRequest", "idTag", text(36)),
        ("RemoteStartRequest", "connectorId", json!({"minimum": 1})),
        ("RemoteStartRequest", "evseId", json!({"minimum": 1})),
        ("RemoteStartRequest", "chargingProfile", free_object()),
        ("RemoteStopRequest", "transactionId", text(36)),
        ("ChargingProfileRequest", "chargingProfile", free_object()),
        ("ChargingProfileRequest", "connectorId", json!({"minimum": 0})),
        ("ChargingProfileRequest", "evseId", json!({"minimum": 0})),
        ("CreateIntentRequest", "method", method.clone()),
        ("CreateIntentRequest", "description", free_text(200)),
        ("CustomerInput", "customerId", text(64)),
        ("CustomerInput", "name", text(200)),
        ("CustomerInput", "email", email()),
        ("CustomerInput", "cpf", cpf()),
        ("AuthorizeRequest", "cardToken", token(255)),
        ("AuthorizeRequest", "networkToken", free_object()),
        ("AmountRequest", "amount", amount.clone()),
        ("TopUpRequest", "method", one_of(["CREDIT_CARD", "PIX"])),
        ("TopUpRequest", "cardToken", token(255)),
        ("StartChargeDto", "chargePointId", json!({"pattern": TERMINAL_ID})),
        ("StartChargeDto", "stationId", station.clone()),
        ("StartChargeDto", "connectorId", json!({"minimum": 0})),
        ("StartChargeDto", "method", method),
        ("StartChargeDto", "email", email()),
        ("StartChargeDto", "cpf", cpf()),
        ("StartChargeDto", "cardToken", token(255)),
        ("StartChargeDto", "networkToken", free_object()),
        ("StartChargeDto", "customerId", text(64)),
        ("ChargerTariff", "price", range(0, 100)),
        ("ChargerTariff", "fixed_connection_cost", range(0, 1000)),
        ("StopChargeDto", "sessionId", json!({"format": "uuid"})),
        ("RefundDto", "amount", amount),
        ("ProgressDto", "energyWh", json!({"minimum": 0})),
        ("CompleteDto", "energyWh", json!({"minimum": 0})),
        ("RegisterWebhookDto", "url", url.clone()),
        ("RegisterWebhookDto", "eventTypes", filters.clone()),
        ("RegisterWebhookDto", "description", free_text(500)),
        ("UpdateWebhookDto", "url", url),
        ("UpdateWebhookDto", "eventTypes", filters),
        ("UpdateWebhookDto", "description", free_text(500)),
        ("RotateSecretDto", "graceSeconds", range(0, 604_800)),
        ("UpdateConfigRequest", "timeoutMs", range(*TIMEOUT_MS.start(), *TIMEOUT_MS.end())),
        ("UpdateConfigRequest", "retries", range(*RETRIES.start(), *RETRIES.end())),
        (
            "UpdateConfigRequest",
            "credentials",
            json!({
                "maxProperties": MAX_CREDENTIALS,
                "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,63}$"},
                // Bytes on the server; ASCII here, so characters are bytes.
                "additionalProperties": {"type": ["string", "null"], "minLength": 1,
                    "maxLength": MAX_CREDENTIAL_BYTES, "pattern": "^[ -~]+$"},
            }),
        ),
        ("CreateMappingRequest", "stationId", station.clone()),
        ("CreateMappingRequest", "adapterType", adapter.clone()),
        ("CreateMappingRequest", "chargePointIds", charge_points.clone()),
        ("UpdateMappingRequest", "stationId", station),
        ("UpdateMappingRequest", "adapterType", adapter),
        ("UpdateMappingRequest", "chargePointIds", charge_points),
    ]
}

fn one_of_ints(values: &[i64]) -> Value {
    json!({"enum": values})
}

/// Whether a property's `type` admits null (`["string", "null"]`).
fn nullable(property: &Map<String, Value>) -> bool {
    property.get("type").and_then(Value::as_array).is_some_and(|types| types.iter().any(|t| t == "null"))
}

/// Merges `keywords` into `property`; an `enum` of a nullable property also admits null.
fn merge(property: &mut Map<String, Value>, keywords: &Value) {
    let null = nullable(property);
    for (key, value) in keywords.as_object().into_iter().flatten() {
        let mut value = value.clone();
        if key == "enum" && null {
            if let Value::Array(options) = &mut value {
                options.push(Value::Null);
            }
        }
        if key == "description" {
            if let (Some(Value::String(existing)), Value::String(extra)) = (property.get_mut(key), &value) {
                existing.push(' ');
                existing.push_str(extra);
                continue;
            }
        }
        if key == "items" || key == "additionalProperties" {
            if let (Some(Value::Object(existing)), Value::Object(extra)) = (property.get_mut(key), &value) {
                existing.extend(extra.clone());
                continue;
            }
        }
        property.insert(key.clone(), value);
    }
}

/// Writes the rules into `document`. Returns the rules whose schema or
/// property the document lacks (a renamed field): the tests want none.
pub fn apply(document: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return vec!["components.schemas".to_owned()];
    };
    for (schema, name, keywords) in rules() {
        match schemas.get_mut(schema).and_then(|s| s.pointer_mut(&format!("/properties/{name}"))) {
            Some(Value::Object(property)) => merge(property, &keywords),
            _ => missing.push(format!("{schema}.{name}")),
        }
    }
    between::cross_field_rules(schemas);
    // `/charge/start` takes the ad-hoc start's body, and must name its charger:
    // a schema of its own (not an `allOf`, which generators cannot merge with
    // the `oneOf` above).
    let mut charger_start = schemas.get("StartChargeDto").cloned().unwrap_or_default();
    if let Some(Value::Array(required)) = charger_start.get_mut("required") {
        required.push(json!("chargePointId"));
    }
    if let Some(description) = charger_start.get_mut("description") {
        *description =
            json!("Start charging on a charger of yours (seed 001's StartChargeDto, `chargePointId` required).");
    }
    schemas.insert("ChargerStartDto".to_owned(), charger_start);
    match document.pointer_mut("/paths/~1charge~1start/post/requestBody/content/application~1json/schema") {
        Some(schema) => *schema = json!({"$ref": "#/components/schemas/ChargerStartDto"}),
        None => missing.push("POST /charge/start".to_owned()),
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_names_a_field_of_the_document() {
        let mut document = serde_json::to_value(<super::super::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        assert_eq!(apply(&mut document), Vec::<String>::new());
    }

    #[test]
    fn enum_names_are_the_wire_names() {
        assert!(names::<ConnectorType>().contains(&"GB/T".to_owned()));
        assert_eq!(names::<OcppVersion>(), ["1.6", "2.0.1"]);
        assert!(names::<PaymentMethod>().contains(&"CREDIT_CARD".to_owned()));
        assert!(event_filters().contains(&"charge_session.*".to_owned()));
        assert!(event_filters().contains(&"*".to_owned()));
    }
}
