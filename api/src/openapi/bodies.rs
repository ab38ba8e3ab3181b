//! Request bodies checked against the document itself (ADR 0022).
//!
//! Every JSON body a route reads is validated against the schema the OpenAPI
//! document declares for that route before it is deserialized: the document is
//! the contract, so whatever it refuses the server refuses (422 with one field
//! error per violation), and a rule added to a DTO's schema is enforced by that
//! alone. The domain's checks stay as the second line (they also guard the
//! OCPP and queue entry points); where the two disagree, the schema is wrong.

use std::{collections::HashMap, sync::OnceLock};

use axum::http::Method;
use domain::FieldError;
use jsonschema::{
    error::{TypeKind, ValidationErrorKind},
    Draft, Resource, Validator,
};
use serde_json::Value;

/// The document's base URI inside the validators.
const DOCUMENT: &str = "urn:chargeledger:openapi";

/// A route's key: method and path template with every `{…}` emptied, so the
/// document's `{customerId}` and the router's `{customer_id}` meet.
fn key(method: &str, template: &str) -> (String, String) {
    let mut path = String::with_capacity(template.len());
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                path.push('{');
            }
            '}' => {
                in_param = false;
                path.push('}');
            }
            _ if in_param => {}
            _ => path.push(c),
        }
    }
    (method.to_ascii_uppercase(), path)
}

/// Points every local `$ref` (`#/components/…`) of an inline schema at the document.
fn anchor_refs(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (name, value) in map.iter_mut() {
                match value {
                    Value::String(target) if name == "$ref" && target.starts_with("#/") => {
                        *target = format!("{DOCUMENT}{target}");
                    }
                    _ => anchor_refs(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(anchor_refs),
        _ => {}
    }
}

/// The validators of every operation that reads a JSON body.
struct Bodies {
    routes: HashMap<(String, String), Validator>,
}

fn build() -> Result<Bodies, String> {
    let document = crate::openapi::document();
    let resource = Resource::from_contents(document.clone()).map_err(|e| e.to_string())?;
    let mut routes = HashMap::new();
    let Some(paths) = document.get("paths").and_then(Value::as_object) else { return Ok(Bodies { routes }) };
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (method, operation) in item {
            let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema") else { continue };
            let mut schema = schema.clone();
            anchor_refs(&mut schema);
            let validator = jsonschema::options()
                .with_draft(Draft::Draft202012)
                .should_validate_formats(true)
                .with_resource(DOCUMENT, resource.clone())
                .build(&schema)
                .map_err(|e| format!("{method} {path}: {e}"))?;
            routes.insert(key(method, path), validator);
        }
    }
    Ok(Bodies { routes })
}

fn bodies() -> &'static Bodies {
    static BODIES: OnceLock<Bodies> = OnceLock::new();
    BODIES.get_or_init(|| match build() {
        Ok(bodies) => bodies,
        Err(error) => {
            // The document is built from the code, so this is a programming
            // error a test catches (`every_body_schema_compiles`); answering
            // without the check is safer than refusing every request.
            tracing::error!(%error, "the request-body schemas do not compile; bodies are checked by the DTOs only");
            Bodies { routes: HashMap::new() }
        }
    })
}

/// Builds the validators now (at start-up) instead of on the first request.
pub fn warm() {
    let _ = bodies();
}

/// `connectors[0].id` for `/connectors/0/id` (the field names serde reports).
fn field_of(pointer: &str) -> String {
    let mut field = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            field.push('[');
            field.push_str(&segment);
            field.push(']');
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&segment);
        }
    }
    field
}

/// What the document says is wrong with `body` for this route: one field error
/// per violation (at most 20), empty when the body conforms or the route has
/// no body schema.
///
/// `role` is the caller's (`driver`, …): a rule between fields may be waived
/// for a role (`x-rule.waivedFor`), such as a WALLET payment's customer, which
/// for a driver is its own, from its token.
pub fn violations(method: &Method, template: &str, body: &Value, role: Option<&str>) -> Vec<FieldError> {
    let Some(validator) = bodies().routes.get(&key(method.as_str(), template)) else { return Vec::new() };
    // Field errors first; a rule between fields (`not` of violations) is said
    // only when none of the fields of its object is wrong in itself.
    let mut errors: Vec<FieldError> = Vec::new();
    let mut between: Vec<(String, Vec<FieldError>)> = Vec::new();
    for error in validator.iter_errors(body).take(20) {
        let field = field_of(error.instance_path.as_str());
        if let ValidationErrorKind::Not { schema } = &error.kind {
            let instance = body.pointer(error.instance_path.as_str()).unwrap_or(body);
            between.push((field.clone(), explain(schema, instance, &field, role)));
            continue;
        }
        let mut field = field;
        if let ValidationErrorKind::Required { property } = &error.kind {
            if let Some(name) = property.as_str() {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(name);
            }
        }
        push_once(&mut errors, FieldError::new(or_body(&field), message(&error.kind)));
    }
    for (object, explained) in between {
        let inside = |f: &str| {
            object.is_empty()
                || f == object
                || f.starts_with(&format!("{object}."))
                || f.starts_with(&format!("{object}["))
        };
        if !errors.iter().any(|e| inside(&e.field)) {
            for error in explained {
                push_once(&mut errors, error);
            }
        }
    }
    errors
}

fn or_body(field: &str) -> String {
    if field.is_empty() {
        "body".to_owned()
    } else {
        field.to_owned()
    }
}

/// One error per field, the first found (as the domain's checks name them).
fn push_once(errors: &mut Vec<FieldError>, error: FieldError) {
    if !errors.iter().any(|e| e.field == error.field) {
        errors.push(error);
    }
}

/// The violations (`anyOf` of a `not`) `instance` matches, each as its
/// `x-rule` says: the field to name and why.
fn explain(not: &Value, instance: &Value, field: &str, role: Option<&str>) -> Vec<FieldError> {
    let prefixed = |name: &str| if field.is_empty() { name.to_owned() } else { format!("{field}.{name}") };
    let violations = not.get("anyOf").and_then(Value::as_array).cloned().unwrap_or_default();
    let matched: Vec<&Value> = violations
        .iter()
        .filter(|violation| jsonschema::validator_for(violation).is_ok_and(|v| v.is_valid(instance)))
        .collect();
    let waived = |violation: &&Value| {
        role.is_some_and(|role| violation.pointer("/x-rule/waivedFor").and_then(Value::as_str) == Some(role))
    };
    if !matched.is_empty() && matched.iter().all(waived) {
        return Vec::new();
    }
    let found: Vec<FieldError> = matched
        .iter()
        .filter(|violation| !waived(violation))
        .filter_map(|violation| {
            let rule = violation.get("x-rule")?;
            Some(FieldError::new(prefixed(rule.get("field")?.as_str()?), rule.get("message")?.as_str()?))
        })
        .collect();
    if found.is_empty() {
        vec![FieldError::new(or_body(field), "is a combination of values the schema excludes")]
    } else {
        found
    }
}

/// The error text, without echoing the value for kinds that would quote it
/// (a password or a card token must not come back in a problem).
fn message(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Required { .. } => "is required".to_owned(),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("unknown field(s): {}", unexpected.join(", "))
        }
        ValidationErrorKind::MinLength { limit } => format!("must be at least {limit} characters"),
        ValidationErrorKind::MaxLength { limit } => format!("must be at most {limit} characters"),
        ValidationErrorKind::Pattern { pattern } => {
            super::constraints::pattern_in_words(pattern).map_or_else(|| format!("must match {pattern}"), str::to_owned)
        }
        ValidationErrorKind::Format { format } => format!("must be a valid {format}"),
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        ValidationErrorKind::Type { kind } => match kind {
            TypeKind::Single(t) => format!("must be of type {t}"),
            TypeKind::Multiple(set) => {
                format!("must be of type {}", set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "))
            }
        },
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} item(s)"),
        ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} item(s)"),
        ValidationErrorKind::UniqueItems => "must not list an item twice".to_owned(),
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::OneOfNotValid | ValidationErrorKind::AnyOf => {
            "matches none of the allowed shapes (see the schema)".to_owned()
        }
        ValidationErrorKind::OneOfMultipleValid => "matches more than one of the allowed shapes".to_owned(),
        ValidationErrorKind::Not { .. } => "is a value the schema excludes".to_owned(),
        _ => "does not match the schema".to_owned(),
    }
}

/// Where `body` holds U+0000, in a string or a key (at most 20 places):
/// Postgres cannot store it in `jsonb` or `text`, so no body may carry one.
pub fn nul_paths(body: &Value) -> Vec<FieldError> {
    fn walk(value: &Value, at: &mut String, found: &mut Vec<FieldError>) {
        if found.len() >= 20 {
            return;
        }
        match value {
            Value::String(text) if text.contains('\0') => {
                found.push(FieldError::new(if at.is_empty() { "body" } else { at.as_str() }, "must not hold U+0000"));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("[{i}]"));
                    walk(item, at, found);
                    at.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let len = at.len();
                    if !at.is_empty() {
                        at.push('.');
                    }
                    if key.contains('\0') {
                        at.push_str(&key.replace('\0', "\\u0000"));
                        found.push(FieldError::new(at.as_str(), "a key must not hold U+0000"));
                    } else {
                        at.push_str(key);
                        walk(item, at, found);
                    }
                    at.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(body, &mut String::new(), &mut found);
    found
}

/// Whole numbers written with a fraction or an exponent (`68.0`, `1e2`) as
/// integers: JSON has one number type and the document's `integer` admits
/// them, so the DTOs' integer fields must too. Only exact values (|n| < 2^53).
pub fn whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                const EXACT: f64 = 9_007_199_254_740_992.0;
                if f.fract() == 0.0 && f.abs() < EXACT {
                    // In range and whole, so the cast is exact.
                    #[allow(clippy::cast_possible_truncation)]
                    let i = f as i64;
                    *value = Value::from(i);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_body_schema_compiles() {
        let bodies = build().expect("every request-body schema compiles");
        assert!(bodies.routes.contains_key(&key("POST", "/v1/terminals")));
        assert!(bodies.routes.contains_key(&key("POST", "/v1/wallets/{customer_id}/top-ups")));
        assert!(bodies.routes.len() > 20, "{} body schemas", bodies.routes.len());
    }

    #[test]
    fn a_violation_names_its_field_as_serde_would() {
        let errors = violations(&Method::POST, "/v1/terminals", &json!({"id": "A", "connectors": [{"id": "x"}]}), None);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"stationId"), "{fields:?}");
        assert!(fields.contains(&"connectors[0].id"), "{fields:?}");
    }

    #[test]
    fn a_rule_between_fields_is_said_in_its_own_words() {
        let terminal = json!({"id": "A", "stationId": 1, "vendor": "v", "model": "m", "ocppVersion": "1.6",
            "connectors": [{"id": 1, "type": "CCS2", "maxPowerW": 1}]});
        let errors = violations(&Method::POST, "/v1/terminals", &terminal, None);
        assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["chargerPassword"], "{errors:?}");
        let start = json!({"stationId": 1, "connectorId": 1, "amount": 100, "email": "a@b.co", "method": "CREDIT_CARD",
            "charger": {"price": 1, "fixed_connection_cost": 0}, "chargePointId": "CP-1"});
        let errors = violations(&Method::POST, "/charge/start", &start, None);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].field.as_str(), errors[0].message.as_str()),
            ("cardToken", "is required for CREDIT_CARD: the card token")
        );
        let wallet = json!({"amount": 100, "method": "WALLET", "customer": {"name": "Ana"}});
        let errors = violations(&Method::POST, "/v1/payment-intents", &wallet, Some("operator"));
        assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["customer.customerId"], "{errors:?}");
        // A driver's wallet is its own: the handler takes the customer from its token.
        assert!(violations(&Method::POST, "/v1/payment-intents", &wallet, Some("driver")).is_empty());
    }

    #[test]
    fn a_nul_anywhere_is_named_by_its_path() {
        let body = json!({"payload": {"a": ["ok", "b\0"], "k\0": 1}, "n": "x"});
        let fields: Vec<String> = nul_paths(&body).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["payload.a[1]", "payload.k\\u0000"]);
        assert!(nul_paths(&json!({"a": "no nul", "b": [1, null]})).is_empty());
    }

    #[test]
    fn whole_floats_become_integers_and_fractions_stay() {
        let mut value = json!({"a": 68.0, "b": [1e2, 2.5], "c": 7});
        whole_numbers_as_integers(&mut value);
        assert_eq!(value, json!({"a": 68, "b": [100, 2.5], "c": 7}));
        assert!(value["a"].is_i64());
    }
}
