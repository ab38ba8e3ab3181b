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

/// Characters no text field may hold: C0 and C1 controls but tab and line feed.
const CONTROLS: &str = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f";
/// A character that is neither a control nor white space (Unicode White_Space,
/// what Rust's `str::trim` strips; spelled out because `\s` differs between
/// regex engines).
const VISIBLE: &str = r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// The shape of a terminal (charge point) id: `TerminalId::is_shaped`.
pub const TERMINAL_ID: &str = "^[A-Za-z0-9._:-]{1,48}$";

/// The words for a pattern of this file, for a field error (a person reads
/// "not blank, no control characters" better than the regular expression).
pub fn pattern_in_words(pattern: &str) -> Option<&'static str> {
    let text = format!("^[^{CONTROLS}]*{VISIBLE}[^{CONTROLS}]*$");
    let free = format!("^[^{CONTROLS}]*$");
    let email = email();
    let cpf = cpf();
    Some(match pattern {
        p if p == text => "must be text that is not blank and holds no control characters (tab and line feed aside)",
        p if p == free => "must hold no control characters (tab and line feed aside)",
        "^[!-~]+$" => "must be visible ASCII characters",
        "^[ -~]+$" | "^[ -~]{16,40}$" => "must be printable ASCII characters (16 to 40 for a password)",
        TERMINAL_ID => "must be 1 to 48 characters from A-Z, a-z, 0-9, '.', '_', '-', ':'",
        p if Some(p) == email["pattern"].as_str() => "must be an e-mail address (name@host.domain)",
        p if Some(p) == cpf["pattern"].as_str() => "must be a CPF: 11 digits, optionally as 000.000.000-00",
        p if p == webhook_url() => "must be an http:// or https:// URL with a host name or IPv4 address",
        _ => return None,
    })
}

/// `^…$` text of 1 to `max` characters, not blank, without control characters
/// but tab and line feed (`domain::terminal::decide::text_ok`).
fn text(max: u64) -> Value {
    json!({
        "minLength": 1,
        "maxLength": max,
        "pattern": format!("^[^{CONTROLS}]*{VISIBLE}[^{CONTROLS}]*$"),
    })
}

/// Free text of at most `max` characters (may be empty), without control
/// characters but tab and line feed.
fn free_text(max: u64) -> Value {
    json!({"maxLength": max, "pattern": format!("^[^{CONTROLS}]*$")})
}

/// A token or key of 1 to `max` visible ASCII characters.
fn token(max: u64) -> Value {
    json!({"minLength": 1, "maxLength": max, "pattern": "^[!-~]+$"})
}

/// An e-mail address: a dot-atom local part (ASCII atext or any non-ASCII
/// letter), `@`, a dotted host name (letters, digits, `-`, `_`, non-ASCII
/// for internationalized domains); at most 254 characters. The pattern is the
/// whole rule (no `format`, whose implementations differ between validators).
fn email() -> Value {
    // Non-ASCII but not white space (Unicode White_Space, as `char::is_whitespace`).
    const WIDE: &str =
        r"\u00a1-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e\u2060-\u2fff\u3001-\ud7ff\ue000-\uffff";
    let atom = format!(r"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~{WIDE}-]+");
    let label = format!(r"[A-Za-z0-9_{WIDE}]([A-Za-z0-9_{WIDE}-]*[A-Za-z0-9_{WIDE}])?");
    json!({
        "maxLength": 254,
        "pattern": format!(r"^{atom}(\.{atom})*@{label}(\.{label})+$"),
    })
}

/// A CPF: 11 digits, optionally punctuated `000.000.000-00`; the check
/// digits are verified by the server (422), which no schema can say.
fn cpf() -> Value {
    json!({"pattern": r"^[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2}$", "format": "cpf"})
}

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

/// A webhook target: `http(s)://`, a host name (labels of letters, digits
/// and hyphens, the last one starting with a letter) or a dotted IPv4
/// address, an optional port, then any visible ASCII. No credentials, no
/// IPv6 literal. Whether the deployment lets it point at a private address or
/// that port is its target policy (`CHARGELEDGER_WEBHOOK_*`, 422).
fn webhook_url() -> String {
    let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let last = "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let port = "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    format!("^[Hh][Tt][Tt][Pp][Ss]?://(({label}\\.)*{last}|{octet}(\\.{octet}){{3}})(:{port})?([/?#][!-~]*)?$")
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
    cross_field_rules(schemas);
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

/// A rule a driver need not follow: its WALLET customer is itself, taken from
/// its token (`x-rule.waivedFor`, read by [`super::bodies::violations`]).
fn waived_for_drivers(mut violation: Value) -> Value {
    if let Some(Value::Object(rule)) = violation.get_mut("x-rule") {
        rule.insert("waivedFor".to_owned(), json!("driver"));
        if let Some(Value::String(message)) = rule.get_mut("message") {
            message.push_str("; a driver's is its own, from its token");
        }
    }
    violation
}

/// Rules between fields of one body, where JSON Schema can say them.
///
/// Each is written as a violation the body must not match: the object gets
/// `not: {anyOf: [violation, …]}`, and each violation carries `x-rule` (the
/// field to name and why) for the field error. Not `oneOf` or `if`/`then`:
/// client generators turn an object with a `oneOf` into a union of its
/// branches (losing its properties), and fuzzers read `if`/`then` less
/// reliably; `not` is ignored by the one and well understood by the other.
fn cross_field_rules(schemas: &mut Map<String, Value>) {
    let forbid = |schemas: &mut Map<String, Value>, schema: &str, violations: Vec<Value>| {
        if let Some(Value::Object(target)) = schemas.get_mut(schema) {
            target.insert("not".to_owned(), json!({"anyOf": violations}));
        }
    };
    let rule = |field: &str, message: &str| json!({"field": field, "message": message});
    // A password with profile 1 or 2 (absent means 1); profile 0 without one.
    let credentials = |password: &str| {
        vec![
            json!({"required": ["securityProfile", password],
                   "properties": {"securityProfile": {"const": 0}, password: {"type": "string"}},
                   "x-rule": rule(password, "must be absent for security profile 0 (no credentials)")}),
            json!({"properties": {password: {"type": "null"}, "securityProfile": {"enum": [1, 2, null]}},
                   "x-rule": rule(password, "is required (16 to 40 characters), unless securityProfile is 0 \
                       (no credentials), which must then be given explicitly")}),
        ]
    };
    forbid(schemas, "RegisterTerminalRequest", credentials("chargerPassword"));
    forbid(schemas, "ChargerPasswordRequest", credentials("password"));
    // A heartbeat is of severity info.
    forbid(
        schemas,
        "HealthEventRequest",
        vec![json!({"required": ["kind", "severity"],
                    "properties": {"kind": {"const": "heartbeat"}, "severity": {"enum": ["warning", "error", "critical"]}},
                    "x-rule": rule("severity", "a heartbeat has severity info")})],
    );
    // What a payment method needs from the same body (absent or null is missing).
    let needs = |methods: &[&str], field: &str, what: &str| {
        json!({"required": ["method"], "properties": {"method": {"enum": methods}, field: {"type": "null"}},
               "x-rule": rule(field, &format!("is required for {}: {what}", methods.join(" and ")))})
    };
    forbid(schemas, "TopUpRequest", vec![needs(&["CREDIT_CARD"], "cardToken", "the card token")]);
    forbid(
        schemas,
        "StartChargeDto",
        vec![
            needs(&["CREDIT_CARD"], "cardToken", "the card token"),
            needs(&["GOOGLE_PAY", "APPLE_PAY"], "networkToken", "the encrypted wallet payload (an object)"),
            waived_for_drivers(needs(&["WALLET"], "customerId", "the wallet's customer")),
        ],
    );
    // A WALLET intent names its customer (a driver's is its own, from its token).
    forbid(
        schemas,
        "CreateIntentRequest",
        vec![json!({"required": ["method"],
                    "properties": {"method": {"const": "WALLET"}, "customer": {"properties": {"customerId": {"type": "null"}}}},
                    "x-rule": rule("customer.customerId", "is required for WALLET (the wallet's customer)")})]
        .into_iter()
        .map(waived_for_drivers)
        .collect(),
    );
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
