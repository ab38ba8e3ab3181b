//! Canonical event bytes, the per-stream hash chain and Merkle roots of seals.
//!
//! The canonical form is JSON with object keys sorted by byte order and no
//! whitespace, written here rather than by serde so that it does not depend on
//! whether some dependency switches `serde_json` to insertion-ordered maps.
//! Postgres `jsonb` keeps values but not key order, so hashing the canonical
//! form of what we read back gives the same bytes we hashed when appending.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash that precedes the first event of every stream, and the first seal.
pub const ZERO_HASH: Hash = [0; 32];

/// Writes `value` in canonical JSON.
pub fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The fields of an event that its hash covers. The global position is not
/// among them (the database assigns it); seals cover positions.
#[derive(Debug, Clone, Copy)]
pub struct HashedFields<'a> {
    /// Stream id.
    pub stream_id: &'a str,
    /// Version within the stream, from 1.
    pub stream_version: i64,
    /// Event id.
    pub event_id: Uuid,
    /// Event type.
    pub event_type: &'a str,
    /// Schema version of the payload.
    pub schema_version: i32,
    /// The event's JSON body, hashed in canonical form (sorted keys, no whitespace).
    pub payload: &'a Value,
    /// The event's JSON metadata, hashed in canonical form like the payload.
    pub metadata: &'a Value,
    /// Recording time (microsecond precision, as Postgres keeps it).
    pub recorded_at: DateTime<Utc>,
}

/// `SHA-256(prev_hash ‖ canonical event)`.
pub fn event_hash(prev_hash: &Hash, fields: &HashedFields<'_>) -> Hash {
    let doc = serde_json::json!({
        "eventId": fields.event_id,
        "eventType": fields.event_type,
        "metadata": fields.metadata,
        "payload": fields.payload,
        "recordedAt": fields.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "schemaVersion": fields.schema_version,
        "streamId": fields.stream_id,
        "streamVersion": fields.stream_version,
    });
    let mut canonical = String::with_capacity(512);
    canonical_json(&doc, &mut canonical);
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(canonical.as_bytes());
    h.finalize().into()
}

/// Leaf of the seal Merkle tree: `SHA-256(0x00 ‖ position ‖ event hash)`.
pub fn merkle_leaf(position: i64, event_hash: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(position.to_be_bytes());
    h.update(event_hash);
    h.finalize().into()
}

/// RFC 6962 Merkle tree hash over leaves (already leaf-hashed). Empty gives zeros.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => ZERO_HASH,
        1 => leaves[0],
        n => {
            let split = n.next_power_of_two() / 2;
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(merkle_root(&leaves[..split]));
            h.update(merkle_root(&leaves[split..]));
            h.finalize().into()
        }
    }
}

/// Seal digest chaining one range to the previous seal.
pub fn seal_digest(previous: &Hash, after: i64, to: i64, count: i64, root: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(after.to_be_bytes());
    h.update(to.to_be_bytes());
    h.update(count.to_be_bytes());
    h.update(root);
    h.finalize().into()
}

/// Parses a 64-character hex digest.
pub fn parse_hex_hash(hex_digest: &str) -> Option<Hash> {
    let bytes = hex::decode(hex_digest).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = String::new();
        canonical_json(&json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}}), &mut out);
        assert_eq!(out, r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#);
    }

    #[test]
    fn merkle_root_matches_rfc6962_shape() {
        let leaves: Vec<Hash> = (0..3).map(|i| merkle_leaf(i, &[i as u8; 32])).collect();
        let left = {
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(leaves[0]);
            h.update(leaves[1]);
            let x: Hash = h.finalize().into();
            x
        };
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(left);
        h.update(leaves[2]);
        let expected: Hash = h.finalize().into();
        assert_eq!(merkle_root(&leaves), expected);
        assert_ne!(merkle_root(&leaves[..2]), merkle_root(&[leaves[1], leaves[0]]));
    }
}
