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
    assert!(md.contains("| [`chargeledger.gadget`](#topic-gadget) | [`gadget.made.v1`](#gadget-made-v1) |"), "{md}");
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
