//! Rules between fields of one body (a password unless security profile 0,
//! what each payment method needs), as `not` of violations with `x-rule`.

use serde_json::{json, Map, Value};

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
pub(super) fn cross_field_rules(schemas: &mut Map<String, Value>) {
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
