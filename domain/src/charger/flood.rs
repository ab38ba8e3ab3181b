//! The summary of rejected frames the gateway did not record one by one
//! (ADR 0017): a flood of refused frames must not grow the log without bound.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::terminal::OcppVersion;

/// Frames of one connection that were refused (each answered with a CALLERROR,
/// or dropped when they were not CALLs) beyond the number recorded one by one
/// per interval; counted here instead (stream `ocpp-<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrameRejectionsSummarized {
    /// Connection they arrived on.
    pub connection_id: Uuid,
    /// Protocol of the connection.
    pub protocol: OcppVersion,
    /// Refused frames not recorded individually.
    pub count: i64,
    /// Of those, how many per OCPP-J error code sent back.
    pub by_code: BTreeMap<String, i64>,
    /// Of those, how many were refused for exceeding the frame rate.
    pub over_rate: i64,
    /// Their total size, bytes.
    pub bytes: i64,
    /// When the first of them arrived.
    pub first_at: DateTime<Utc>,
    /// When the last of them arrived.
    pub last_at: DateTime<Utc>,
}
