//! Walking an event's JSON Schema: its fields, their types and descriptions.

use serde_json::Value;

use super::{Row, MAX_DEPTH};

/// The fields of a payload: its properties, and one level of the properties of nested
/// objects (`tariff.pricePerKwh`, `samples[].energyWh`).
pub(super) fn rows(root: &Value) -> Vec<Row> {
    let payload = deref(root, root, 0);
    let Some(properties) = payload.get("properties").and_then(Value::as_object) else {
        return vec![Row {
            name: "(payload)".into(),
            ty: type_name(root, payload, 0),
            required: true,
            description: description(payload).unwrap_or_default(),
        }];
    };
    let required = required_of(payload);
    let mut rows = Vec::new();
    for (name, property) in properties {
        rows.push(Row {
            name: name.clone(),
            ty: type_name(root, property, 0),
            required: required.contains(&name.as_str()),
            description: field_description(root, property),
        });
        if let Some((suffix, nested)) = nested_object(root, property, 0) {
            let nested_required = required_of(nested);
            let nested_properties = nested.get("properties").and_then(Value::as_object);
            for (child, schema) in nested_properties.into_iter().flatten() {
                rows.push(Row {
                    name: format!("{name}{suffix}.{child}"),
                    ty: type_name(root, schema, 0),
                    required: nested_required.contains(&child.as_str()),
                    description: field_description(root, schema),
                });
            }
        }
    }
    rows
}

fn required_of(schema: &Value) -> Vec<&str> {
    schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

/// The object schema (with `properties`) a property holds, directly, through a `$ref`,
/// as array items (suffix `[]`) or as the one non-null alternative of `anyOf`/`oneOf`.
fn nested_object<'a>(root: &'a Value, schema: &'a Value, depth: usize) -> Option<(&'static str, &'a Value)> {
    if depth > MAX_DEPTH {
        return None;
    }
    let schema = deref(root, schema, depth);
    if schema.get("properties").and_then(Value::as_object).is_some() {
        return Some(("", schema));
    }
    if let Some(items) = schema.get("items") {
        let items = deref(root, items, depth);
        if items.get("properties").and_then(Value::as_object).is_some() {
            return Some(("[]", items));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let mut non_null = alternatives.iter().filter(|a| !is_null(root, a));
            if let (Some(only), None) = (non_null.next(), non_null.next()) {
                return nested_object(root, only, depth + 1);
            }
        }
    }
    None
}

fn is_null(root: &Value, schema: &Value) -> bool {
    deref(root, schema, 0).get("type").and_then(Value::as_str) == Some("null")
}

/// Follows `$ref`s (`#/$defs/...`, `#/definitions/...`, any local JSON pointer); an
/// unresolvable reference is returned as it is.
pub(super) fn deref<'a>(root: &'a Value, schema: &'a Value, depth: usize) -> &'a Value {
    let mut schema = schema;
    for _ in depth..=MAX_DEPTH {
        match schema.get("$ref").and_then(Value::as_str).and_then(|r| resolve(root, r)) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    reference.strip_prefix('#').and_then(|pointer| root.pointer(pointer))
}

/// A property's own description, else that of what it refers to (through a `$ref`, or
/// the one non-null alternative of `anyOf`/`oneOf`).
fn field_description(root: &Value, schema: &Value) -> String {
    description(schema)
        .or_else(|| description(deref(root, schema, 0)))
        .or_else(|| nested_object(root, schema, 0).and_then(|(_, nested)| description(nested)))
        .unwrap_or_default()
}

pub(super) fn description(schema: &Value) -> Option<String> {
    schema.get("description").and_then(Value::as_str).map(|d| d.trim().to_owned()).filter(|d| !d.is_empty())
}

/// A short type for people: `string (uuid)`, `integer (int64) or null`,
/// `object (Tariff)`, `array of object (MeterSample)`, `one of "ocpp", "adhoc"`.
fn type_name(root: &Value, schema: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "any JSON".into();
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return match resolve(root, reference) {
            Some(target) if is_object(target) => format!("object ({name})"),
            Some(target) => type_name(root, target, depth + 1),
            None => format!("`{reference}`"),
        };
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return one_of(values.iter());
    }
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            if !alternatives.is_empty() && alternatives.iter().all(|a| a.get("const").is_some()) {
                return one_of(alternatives.iter().filter_map(|a| a.get("const")));
            }
            let names: Vec<String> = alternatives.iter().map(|a| type_name(root, a, depth + 1)).collect();
            return alternatives_text(names);
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let names: Vec<String> = all.iter().map(|a| type_name(root, a, depth + 1)).collect();
        return if names.is_empty() { "any JSON".into() } else { names.join(" and ") };
    }
    match schema.get("type") {
        Some(Value::String(ty)) => base_type(root, schema, ty, depth),
        Some(Value::Array(types)) => alternatives_text(
            types.iter().filter_map(Value::as_str).map(|ty| base_type(root, schema, ty, depth)).collect(),
        ),
        _ if is_object(schema) => "object".into(),
        _ => "any JSON".into(),
    }
}

fn is_object(schema: &Value) -> bool {
    schema.get("properties").is_some() || schema.get("type").and_then(Value::as_str) == Some("object")
}

fn base_type(root: &Value, schema: &Value, ty: &str, depth: usize) -> String {
    match ty {
        "array" => match schema.get("items") {
            Some(items) => format!("array of {}", type_name(root, items, depth + 1)),
            None => "array".into(),
        },
        "object" => match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) if schema.get("properties").is_none() => {
                format!("map of {}", type_name(root, values, depth + 1))
            }
            _ => "object".into(),
        },
        "null" => "null".into(),
        _ => match schema.get("format").and_then(Value::as_str) {
            Some(format) => format!("{ty} ({format})"),
            None => ty.to_owned(),
        },
    }
}

/// `a or b or null`: duplicates dropped, `null` last.
fn alternatives_text(names: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::new();
    let mut nullable = false;
    for name in names {
        if name == "null" {
            nullable = true;
        } else if !unique.contains(&name) {
            unique.push(name);
        }
    }
    if nullable {
        unique.push("null".into());
    }
    if unique.is_empty() {
        "any JSON".into()
    } else {
        unique.join(" or ")
    }
}

fn one_of<'a>(values: impl Iterator<Item = &'a Value>) -> String {
    let values: Vec<String> = values.map(|v| format!("`{v}`")).collect();
    format!("one of {}", values.join(", "))
}
