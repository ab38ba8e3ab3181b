//! How events become stored records and back.
//!
//! Every event enum is serialized by serde as `{"type": "...", "data": {...}}`
//! (adjacently tagged). The log stores the type and the data separately, with a
//! schema version. Reading goes through [`DomainEvent::upcast`] first, so an old
//! payload is brought to the current shape before serde sees it.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Map, Value};

/// Why a stored record could not be turned into a domain event.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// The event type is not one of this aggregate's.
    #[error("unknown event type {0}")]
    UnknownType(String),
    /// No upcaster knows this version of the type.
    #[error("event type {event_type} has no upcaster from schema version {version}")]
    UnknownVersion {
        /// The event type.
        event_type: String,
        /// The version found in the log.
        version: u32,
    },
    /// The payload does not match the type.
    #[error("payload of {event_type} does not match its schema: {source}")]
    Payload {
        /// The event type.
        event_type: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// An event that can be stored in the log and read back.
pub trait DomainEvent: Serialize + DeserializeOwned + Sized {
    /// Every event type name of this enum. A test checks it against the
    /// variants serde and the JSON Schemas know, so none is forgotten.
    const TYPES: &'static [&'static str];

    /// The name of this event's type, such as `terminal.registered`.
    fn event_type(&self) -> &'static str;

    /// The `'static` spelling of a type name, or `""` when it is not one of ours.
    fn static_type(name: &str) -> &'static str {
        Self::TYPES.iter().find(|t| **t == name).copied().unwrap_or("")
    }

    /// The schema version this code writes for an event type.
    fn current_version(_event_type: &str) -> u32 {
        1
    }

    /// Brings a payload of an older schema version to the current one.
    /// The default knows only the current version.
    fn upcast(event_type: &str, version: u32, payload: Value) -> Result<Value, EventDecodeError> {
        if version == Self::current_version(event_type) {
            Ok(payload)
        } else {
            Err(EventDecodeError::UnknownVersion { event_type: event_type.to_owned(), version })
        }
    }

    /// Splits the event into (type, schema version, payload).
    fn to_record(&self) -> (&'static str, u32, Value) {
        let name = self.event_type();
        // Our event types serialize to objects with string keys; this cannot fail.
        let data = match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Object(Map::new())),
            _ => Value::Null,
        };
        (name, Self::current_version(name), data)
    }

    /// Rebuilds an event from a stored record, upcasting old versions.
    fn from_record(event_type: &str, version: u32, payload: Value) -> Result<Self, EventDecodeError> {
        if Self::static_type(event_type).is_empty() {
            return Err(EventDecodeError::UnknownType(event_type.to_owned()));
        }
        let payload = Self::upcast(event_type, version, payload)?;
        serde_json::from_value(json!({ "type": event_type, "data": payload }))
            .map_err(|source| EventDecodeError::Payload { event_type: event_type.to_owned(), source })
    }
}
