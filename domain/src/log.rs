//! Events the log writes about itself: seals over ranges of global positions.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::DomainEvent;

/// Stream id of the seal chain.
pub const SEAL_STREAM: &str = "log-seals";

/// Events of the log itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum LogEvent {
    /// See [`RangeSealed`].
    #[serde(rename = "log.range_sealed")]
    RangeSealed(RangeSealed),
}

/// Every event with a global position in `(afterPosition, toPosition]` was sealed:
/// `merkleRoot` is the RFC 6962 Merkle tree hash over the leaves
/// `SHA-256(0x00 ‖ position ‖ event hash)` in position order, and `seal` is
/// `SHA-256(previousSeal ‖ afterPosition ‖ toPosition ‖ eventCount ‖ merkleRoot)`
/// (integers as 8-byte big-endian), chaining every seal to the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeSealed {
    /// Exclusive start: the previous seal's `toPosition`, or 0.
    pub after_position: i64,
    /// Inclusive end.
    pub to_position: i64,
    /// Events in the range.
    pub event_count: i64,
    /// Hex Merkle root of the range.
    pub merkle_root: String,
    /// Hex digest of the previous seal (64 zeros for the first).
    pub previous_seal: String,
    /// Hex digest of this seal.
    pub seal: String,
    /// When the seal was made.
    pub sealed_at: DateTime<Utc>,
}

impl DomainEvent for LogEvent {
    const TYPES: &'static [&'static str] = &["log.range_sealed"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::RangeSealed(_) => "log.range_sealed",
        }
    }
}
