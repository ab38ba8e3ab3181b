//! The event catalogue for analysts (`docs/events.md`), rendered from the committed
//! JSON Schemas in `schemas/events/` and their examples in `schemas/events/examples/`.
//!
//! `chargeledger catalogue` writes it; a test (`api/tests/event_schemas.rs`) checks
//! that the committed file is what [`render`] produces. The output depends only on
//! the schema and example files: topics and event types are sorted (versions
//! numerically), fields keep the order of the schema's `properties` (the order the
//! payload is serialized in; the workspace enables serde_json's `preserve_order`).

mod markdown;
mod schema;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, path::Path};

use serde_json::Value;

use self::markdown::{slug, write_catalogue};

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
