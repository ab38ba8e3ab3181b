//! Commands sent to chargers (RemoteStartTransaction, Reset, SetChargingProfile,
//! …): one stream per command, `ocpp_command-<id>`, so that the API, the
//! gateway holding the connection and auditors agree on its fate.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::DomainEvent;

/// Lifecycle of a command to a charger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum OcppCommandEvent {
    /// See [`OcppCommandRequested`].
    #[serde(rename = "ocpp_command.requested")]
    Requested(OcppCommandRequested),
    /// See [`OcppCommandSent`].
    #[serde(rename = "ocpp_command.sent")]
    Sent(OcppCommandSent),
    /// See [`OcppCommandAnswered`].
    #[serde(rename = "ocpp_command.answered")]
    Answered(OcppCommandAnswered),
    /// See [`OcppCommandFailed`].
    #[serde(rename = "ocpp_command.failed")]
    Failed(OcppCommandFailed),
}

/// Someone asked for a CALL to a charger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OcppCommandRequested {
    /// The command.
    pub command_id: Uuid,
    /// Target charger.
    pub charge_point_id: String,
    /// OCPP action.
    pub action: String,
    /// OCPP request payload, already valid against the official schema.
    pub payload: Value,
    /// Keep it for the next connection when the charger is offline.
    pub deliver_on_reconnect: bool,
    /// How long to wait for the charger's answer once sent.
    pub timeout_ms: i64,
    /// Platform clock when the command was requested, not the charger's clock.
    #[schemars(description = "When.")]
    pub requested_at: DateTime<Utc>,
}

/// The CALL went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OcppCommandSent {
    /// OCPP message id of the CALL.
    pub message_id: String,
    /// Connection it went out on.
    pub connection_id: Uuid,
    /// Gateway clock when the CALL frame was written to the connection.
    #[schemars(description = "When.")]
    pub sent_at: DateTime<Utc>,
}

/// The charger answered with a CALLRESULT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OcppCommandAnswered {
    /// The CALLRESULT payload.
    pub response: Value,
    /// Gateway clock when the CALLRESULT arrived.
    #[schemars(description = "When.")]
    pub answered_at: DateTime<Utc>,
}

/// The command will not be answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OcppCommandFailed {
    /// `call_error`, `timeout`, `disconnected`, `invalid_response` or `offline`.
    pub reason: String,
    /// OCPP error code of a CALLERROR.
    pub error_code: Option<String>,
    /// Human-readable detail: the CALLERROR description or our account of the failure.
    #[schemars(description = "Explanation.")]
    pub description: Option<String>,
    /// Platform clock when the failure was recorded (e.g. when the timeout elapsed).
    #[schemars(description = "When.")]
    pub failed_at: DateTime<Utc>,
}

impl OcppCommandFailed {
    /// The `reason` of a command the charger did not answer in time.
    pub const TIMEOUT: &'static str = "timeout";
    /// The `reason` of a command whose charger disconnected before answering.
    pub const DISCONNECTED: &'static str = "disconnected";
    /// The `reason` of an answer that broke the action's schema.
    pub const INVALID_RESPONSE: &'static str = "invalid_response";
    /// The `reason` of a command the charger answered with a CALLERROR.
    pub const CALL_ERROR: &'static str = "call_error";
    /// The `reason` of a command whose charger was offline when it was due.
    pub const OFFLINE: &'static str = "offline";

    /// Whether the charger did not answer in time (a code, not a message:
    /// callers match this, never the description).
    pub fn is_timeout(&self) -> bool {
        self.reason == Self::TIMEOUT
    }
}

impl DomainEvent for OcppCommandEvent {
    const TYPES: &'static [&'static str] =
        &["ocpp_command.requested", "ocpp_command.sent", "ocpp_command.answered", "ocpp_command.failed"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Requested(_) => "ocpp_command.requested",
            Self::Sent(_) => "ocpp_command.sent",
            Self::Answered(_) => "ocpp_command.answered",
            Self::Failed(_) => "ocpp_command.failed",
        }
    }
}

/// Stream of a command.
pub fn command_stream_id(id: Uuid) -> String {
    format!("ocpp_command-{id}")
}
