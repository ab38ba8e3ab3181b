//! Every event type has a committed JSON Schema and example: the schema matches
//! the code, the example validates against it (with an independent validator)
//! and decodes into the domain type. A new variant without a schema or an
//! example, or a changed event shape without a new version, fails here.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeSet, path::PathBuf};

use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/events"))
}

fn read(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_variant_has_a_current_committed_schema() {
    let generated = domain::schema::all();
    let generated_types: BTreeSet<&str> = generated.iter().map(|s| s.event_type.as_str()).collect();
    let declared: BTreeSet<&str> = domain::schema::declared_types().into_iter().collect();
    assert_eq!(generated_types, declared, "DomainEvent::TYPES and the serde variants disagree");
    for schema in &generated {
        let path = dir().join(schema.file_name());
        assert!(path.exists(), "{} has no schema: run `chargeledger schemas`", schema.event_type);
        assert_eq!(
            read(path),
            schema.schema,
            "{} changed shape: bump its schema version, keep the old schema and example, add an upcaster \
             (or, if no event of this shape was ever written, run `chargeledger schemas`)",
            schema.file_name()
        );
    }
}

#[test]
fn every_committed_schema_has_an_example_that_validates_and_decodes() {
    let mut checked = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".schema.json")) else {
            continue;
        };
        let (event_type, version) = name.rsplit_once(".v").unwrap();
        let version: u32 = version.parse().unwrap();
        let schema = read(path.clone());
        let validator =
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: not a valid JSON Schema: {e}"));
        let example = read(dir().join("examples").join(format!("{name}.json")));
        let errors: Vec<String> =
            validator.iter_errors(&example).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "example of {name} does not validate: {errors:?}");
        domain::schema::decode_example(event_type, version, example.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The schema is strict: a misspelt field is caught.
        let mut wrong = example.clone();
        wrong.as_object_mut().unwrap().insert("unexpectedField".into(), Value::Bool(true));
        assert!(!validator.is_valid(&wrong), "{name} accepts unknown fields");
        checked += 1;
    }
    assert_eq!(
        checked,
        domain::schema::all().len(),
        "a schema file without a current type (old versions need an upcaster test)"
    );
}

#[test]
fn committed_event_catalogue_is_current() {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md"));
    let rendered = chargeledger_api::catalogue::render(&dir()).unwrap_or_else(|e| panic!("{e}"));
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: run `chargeledger catalogue` to write it", path.display()));
    if rendered != committed {
        let line = rendered
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| rendered.lines().count().min(committed.lines().count()) + 1, |i| i + 1);
        panic!(
            "docs/events.md is not what the event schemas render (first difference at line {line}): run \
             `chargeledger catalogue` (./scripts/chargeledger catalogue) and commit docs/events.md"
        );
    }
}
