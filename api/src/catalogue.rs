//! The event catalogue for analysts (`docs/events.md`), rendered from the committed
//! JSON Schemas in `schemas/events/` and their examples in `schemas/events/examples/`.
//!
//! `chargeledger catalogue` writes it; a test (`api/tests/event_schemas.rs`) checks
//! that the committed file is what [`render`] produces. The output depends only on
//! the schema and example files: topics and event types are sorted (versions
//! numerically), fields keep the order of the schema's `properties` (the order the
//! payload is serialized in; the workspace enables serde_json's `preserve_order`).

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde_json::Value;

/// Kafka topics are `chargeledger.<category>`.
const TOPIC_PREFIX: &str = "chargeledger.";
/// Guard against `$ref` cycles when describing a type.
const MAX_DEPTH: usize = 8;

/// One `<event_type>.v<N>.schema.json` with its example.
struct Event {
    category: String,
    event_type: String,
    version: u32,
    schema: Value,
    /// The example payload, pretty-printed.
    example: String,
}

impl Event {
    fn name(&self) -> String {
        format!("{}.v{}", self.event_type, self.version)
    }

    fn anchor(&self) -> String {
        slug(&format!("{}-v{}", self.event_type, self.version))
    }
}

/// One row of a fields table.
struct Row {
    name: String,
    ty: String,
    required: bool,
    description: String,
}

/// Renders the catalogue of the schemas in `dir` (such as `schemas/events`) as Markdown.
/// Links point at `../schemas/events/`, relative to `docs/events.md`, whatever `dir` is.
pub fn render(dir: &Path) -> Result<String, String> {
    let events = load(dir)?;
    let mut topics: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for event in &events {
        topics.entry(event.category.as_str()).or_default().push(event);
    }
    let mut out = String::new();
    write_catalogue(&mut out, &topics).map_err(|e| format!("cannot format the catalogue: {e}"))?;
    Ok(out)
}

fn load(dir: &Path) -> Result<Vec<Event>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut events = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let file_name = entry.file_name();
        let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".schema.json")) else {
            continue;
        };
        let bad_name = || format!("{stem}.schema.json: expected <event_type>.v<N>.schema.json");
        let (event_type, version) = stem.rsplit_once(".v").ok_or_else(bad_name)?;
        let version: u32 = version.parse().map_err(|_| bad_name())?;
        let category = event_type.split_once('.').map_or(event_type, |(category, _)| category);
        if category.is_empty() {
            return Err(bad_name());
        }
        let example_path = dir.join("examples").join(format!("{stem}.json"));
        events.push(Event {
            category: category.to_owned(),
            event_type: event_type.to_owned(),
            version,
            schema: read_json(&entry.path())?,
            example: serde_json::to_string_pretty(&read_json(&example_path)?)
                .map_err(|e| format!("{}: {e}", example_path.display()))?,
        });
    }
    if events.is_empty() {
        return Err(format!("no <event_type>.v<N>.schema.json files in {}", dir.display()));
    }
    events.sort_by(|a, b| (&a.category, &a.event_type, a.version).cmp(&(&b.category, &b.event_type, b.version)));
    Ok(events)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_catalogue(out: &mut String, topics: &BTreeMap<&str, Vec<&Event>>) -> std::fmt::Result {
    write_intro(out)?;

    writeln!(out, "## Index")?;
    writeln!(out)?;
    writeln!(out, "| topic | event types (`ce_type`) |")?;
    writeln!(out, "| --- | --- |")?;
    for (category, events) in topics {
        let links: Vec<String> = events.iter().map(|e| format!("[`{}`](#{})", e.name(), e.anchor())).collect();
        writeln!(out, "| [`{TOPIC_PREFIX}{category}`](#{}) | {} |", topic_anchor(category), links.join("<br>"))?;
    }

    for (category, events) in topics {
        writeln!(out)?;
        writeln!(out, "<a id=\"{}\"></a>", topic_anchor(category))?;
        writeln!(out)?;
        writeln!(out, "## Topic `{TOPIC_PREFIX}{category}`")?;
        writeln!(out)?;
        writeln!(
            out,
            "`ce_source` `/chargeledger/{category}`; {} event type{}.",
            events.len(),
            if events.len() == 1 { "" } else { "s" }
        )?;
        for event in events {
            writeln!(out)?;
            write_event(out, event)?;
        }
    }
    Ok(())
}

fn write_intro(out: &mut String) -> std::fmt::Result {
    out.push_str(
        "# Event catalogue

<!-- Generated by `chargeledger catalogue` from schemas/events/; do not edit by hand. -->

Every event appended to the chargeledger log is published to Kafka. This page lists
every event type with its topic, fields and an example payload. It is generated from
the committed JSON Schemas in [`schemas/events/`](../schemas/events/) by
`chargeledger catalogue`; a test fails when it is out of date.

**Topics.** An event goes to the topic `chargeledger.<category>`, where `<category>`
is its stream's category, which is also the part of the event type before the first
`.`: `charge_session.canceled` is published to `chargeledger.charge_session`,
`log.range_sealed` to `chargeledger.log`. (`chargeledger` is the default topic
prefix, `CHARGELEDGER_KAFKA_TOPIC_PREFIX`.)

**Messages.** The key is the stream id (such as `charge_session-<uuid>`); the value
is the event payload as JSON (the fields below). The envelope travels in CloudEvents
binary-mode headers:

| header | value |
| --- | --- |
| `ce_specversion` | `1.0` |
| `ce_id` | event id (uuid) |
| `ce_type` | `<event_type>.v<N>`, such as `charge_session.canceled.v1` |
| `ce_source` | `/chargeledger/<category>` |
| `ce_time` | when the event was recorded in the log (RFC 3339, UTC) |
| `ce_subject` | stream id (the key; a wallet's customer part is a pseudonym) |
| `content-type` | `application/json` |
| `ce_position` | global log position |
| `ce_correlationid` | correlation id (when set) |
| `ce_causationid` | causation id (when set) |
| `ce_companyid` | owning company (when set) |

**Duplicates.** Delivery is at least once: dedupe by `ce_id`.

**Order.** Order is per key, that is per stream: the events of one stream arrive in
the order they were appended. Kafka gives no order across keys or topics; sort by
`ce_position` (the global log order) to merge them.

**Versions.** `ce_type` ends with the schema version. A changed shape is a new
version with its own schema; old versions keep their schemas and are listed here
as long as their schema files exist.

",
    );
    Ok(())
}

fn write_event(out: &mut String, event: &Event) -> std::fmt::Result {
    let name = event.name();
    let payload = deref(&event.schema, &event.schema, 0);
    writeln!(out, "<a id=\"{}\"></a>", event.anchor())?;
    writeln!(out)?;
    writeln!(out, "### `{}` v{}", event.event_type, event.version)?;
    writeln!(out)?;
    if let Some(description) = description(payload).or_else(|| description(&event.schema)) {
        writeln!(out, "{description}")?;
        writeln!(out)?;
    }
    writeln!(out, "- `ce_type`: `{name}`")?;
    writeln!(out, "- topic: `{TOPIC_PREFIX}{}`", event.category)?;
    writeln!(out, "- schema: [`{name}.schema.json`](../schemas/events/{name}.schema.json)")?;
    writeln!(out, "- example: [`examples/{name}.json`](../schemas/events/examples/{name}.json)")?;
    writeln!(out)?;
    writeln!(out, "| field | type | required | description |")?;
    writeln!(out, "| --- | --- | --- | --- |")?;
    for row in rows(&event.schema) {
        writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            cell(&row.name),
            cell(&row.ty),
            if row.required { "yes" } else { "no" },
            cell(&row.description)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "```json")?;
    writeln!(out, "{}", event.example)?;
    writeln!(out, "```")?;
    Ok(())
}

/// The fields of a payload: its properties, and one level of the properties of nested
/// objects (`tariff.pricePerKwh`, `samples[].energyWh`).
fn rows(root: &Value) -> Vec<Row> {
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
fn deref<'a>(root: &'a Value, schema: &'a Value, depth: usize) -> &'a Value {
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

fn description(schema: &Value) -> Option<String> {
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

/// Text safe inside a Markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect()
}

fn topic_anchor(category: &str) -> String {
    slug(&format!("topic-{category}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("chargeledger-catalogue-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(dir.join("examples")).unwrap();
            Self(dir)
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const SCHEMA: &str = r##"{
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "$ref": "#/$defs/Spun",
      "$defs": {
        "Spun": {
          "type": "object",
          "additionalProperties": false,
          "description": "A widget spun.",
          "properties": {
            "widgetId": { "type": "string", "format": "uuid", "description": "The widget." },
            "note": { "type": ["string", "null"], "description": "Free | text\nover lines." },
            "speed": { "$ref": "#/$defs/Speed", "description": "How fast." },
            "shape": { "anyOf": [{ "$ref": "#/definitions/Shape" }, { "type": "null" }] },
            "parts": { "type": "array", "items": { "$ref": "#/$defs/Part" }, "description": "Parts." },
            "extra": { "description": "Anything." }
          },
          "required": ["widgetId", "speed", "parts"]
        },
        "Speed": { "oneOf": [{ "type": "string", "const": "slow" }, { "type": "string", "const": "fast" }] },
        "Part": {
          "type": "object",
          "properties": { "weightG": { "type": "integer", "format": "int64", "description": "Grams." } },
          "required": ["weightG"]
        }
      },
      "definitions": {
        "Shape": { "type": "object", "properties": { "sides": { "type": "integer" } }, "description": "A shape." }
      }
    }"##;

    #[test]
    fn renders_topics_fields_nested_objects_and_examples() {
        let dir = Scratch::new();
        dir.write("widget.spun.v2.schema.json", SCHEMA);
        dir.write("widget.spun.v10.schema.json", SCHEMA);
        dir.write("gadget.made.v1.schema.json", SCHEMA);
        dir.write("README.md", "not a schema");
        for name in ["widget.spun.v2", "widget.spun.v10", "gadget.made.v1"] {
            dir.write(&format!("examples/{name}.json"), r#"{"widgetId":"0b6f","speed":"fast","parts":[]}"#);
        }
        let md = render(&dir.0).unwrap();

        assert!(md.contains("## Topic `chargeledger.widget`"), "{md}");
        assert!(
            md.contains("| [`chargeledger.gadget`](#topic-gadget) | [`gadget.made.v1`](#gadget-made-v1) |"),
            "{md}"
        );
        assert!(md.contains("- `ce_type`: `widget.spun.v2`"), "{md}");
        assert!(md.contains("- schema: [`widget.spun.v2.schema.json`](../schemas/events/widget.spun.v2.schema.json)"));
        assert!(md.contains("| `widgetId` | string (uuid) | yes | The widget. |"), "{md}");
        assert!(md.contains("| `note` | string or null | no | Free \\| text over lines. |"), "{md}");
        assert!(md.contains("| `speed` | one of `\"slow\"`, `\"fast\"` | yes | How fast. |"), "{md}");
        assert!(md.contains("| `shape` | object (Shape) or null | no | A shape. |"), "{md}");
        assert!(md.contains("| `shape.sides` | integer | no |  |"), "{md}");
        assert!(md.contains("| `parts` | array of object (Part) | yes | Parts. |"), "{md}");
        assert!(md.contains("| `parts[].weightG` | integer (int64) | yes | Grams. |"), "{md}");
        assert!(md.contains("| `extra` | any JSON | no | Anything. |"), "{md}");
        assert!(md.contains("```json\n{\n  \"widgetId\": \"0b6f\",\n  \"speed\": \"fast\",\n  \"parts\": []\n}\n```"));
        // Topics sorted, versions numerically.
        let gadget = md.find("## Topic `chargeledger.gadget`").unwrap();
        let widget = md.find("## Topic `chargeledger.widget`").unwrap();
        assert!(gadget < widget);
        assert!(md.find("### `widget.spun` v2").unwrap() < md.find("### `widget.spun` v10").unwrap());
        assert_eq!(md, render(&dir.0).unwrap(), "deterministic");
    }

    #[test]
    fn missing_example_or_bad_json_is_an_error() {
        let dir = Scratch::new();
        dir.write("widget.spun.v1.schema.json", SCHEMA);
        let err = render(&dir.0).unwrap_err();
        assert!(err.contains("widget.spun.v1.json"), "{err}");
        dir.write("examples/widget.spun.v1.json", "{not json");
        let err = render(&dir.0).unwrap_err();
        assert!(err.contains("widget.spun.v1.json"), "{err}");
        dir.write("examples/widget.spun.v1.json", "{}");
        assert!(render(&dir.0).is_ok());
        dir.write("widget.spun.vX.schema.json", SCHEMA);
        assert!(render(&dir.0).unwrap_err().contains("expected <event_type>.v<N>"));
        assert!(render(&dir.0.join("nowhere")).is_err());
    }
}
