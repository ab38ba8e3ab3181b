//! Bodies of the charger-command routes and how a command's fate is rendered.

use commands::ocpp_commands::CommandStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// Any supported OCPP command, in the charger's own protocol.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandRequest {
    /// OCPP action. 1.6: RemoteStartTransaction, RemoteStopTransaction, Reset, ChangeAvailability,
    /// UnlockConnector, TriggerMessage, GetConfiguration, ChangeConfiguration, SetChargingProfile,
    /// ClearChargingProfile, GetCompositeSchedule, ClearCache, DataTransfer. 2.0.1: RequestStartTransaction,
    /// RequestStopTransaction, Reset, ChangeAvailability, UnlockConnector, TriggerMessage, GetVariables,
    /// SetVariables, SetChargingProfile, ClearChargingProfile, GetCompositeSchedule, ClearCache, DataTransfer.
    #[schema(example = "Reset")]
    pub action: String,
    /// The OCPP request payload; validated against the official schema of the charger's version.
    #[schema(value_type = Object, example = json!({"type": "Soft"}))]
    pub payload: Value,
    /// When the charger is offline, keep the command and send it once when it reconnects (202).
    #[serde(default)]
    pub deliver_on_reconnect: bool,
    /// How long to wait for the answer, in ms (default CHARGELEDGER_OCPP_CALL_TIMEOUT_MS).
    pub timeout_ms: Option<i64>,
}

/// Start charging (1.6 RemoteStartTransaction, 2.0.1 RequestStartTransaction).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStartRequest {
    /// Id tag / token to charge under.
    pub id_tag: String,
    /// 1.6 connector.
    pub connector_id: Option<i64>,
    /// 2.0.1 EVSE.
    pub evse_id: Option<i64>,
    /// Optional TxProfile charging profile, in the charger's protocol.
    #[schema(value_type = Option<Object>)]
    pub charging_profile: Option<Value>,
    /// Queue for the next connection when offline.
    #[serde(default)]
    pub deliver_on_reconnect: bool,
}

/// Stop a transaction (1.6 RemoteStopTransaction, 2.0.1 RequestStopTransaction).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStopRequest {
    /// Transaction id as the transactions endpoint shows it.
    pub transaction_id: String,
    /// Queue for the next connection when offline.
    #[serde(default)]
    pub deliver_on_reconnect: bool,
}

/// Install a charging profile (SetChargingProfile): TxDefaultProfile, TxProfile or
/// ChargePointMaxProfile (2.0.1: ChargingStationMaxProfile), periods in A or W.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargingProfileRequest {
    /// 1.6 connector (0: the whole charger).
    pub connector_id: Option<i64>,
    /// 2.0.1 EVSE (0: the whole station).
    pub evse_id: Option<i64>,
    /// The profile, in the charger's protocol (1.6 csChargingProfiles, 2.0.1 chargingProfile).
    #[schema(value_type = Object)]
    pub charging_profile: Value,
    /// Queue for the next connection when offline.
    #[serde(default)]
    pub deliver_on_reconnect: bool,
}

/// A command's outcome.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandResult {
    /// The command (its stream is `ocpp_command-<commandId>`).
    pub command_id: Uuid,
    /// OCPP action.
    pub action: String,
    /// `queued`, `sent`, `answered` or `failed`.
    pub status: String,
    /// The charger's CALLRESULT payload, when answered.
    #[schema(value_type = Option<Object>)]
    pub response: Option<Value>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// The API's view of a command in `status`.
pub(super) fn result(command_id: Uuid, action: &str, status: &CommandStatus) -> CommandResult {
    let (name, response, error) = match status {
        CommandStatus::Pending => ("queued", None, None),
        CommandStatus::Sent => ("sent", None, None),
        CommandStatus::Answered(r) => ("answered", Some(r.clone()), None),
        CommandStatus::Failed(f) => {
            let detail = [Some(f.reason.clone()), f.error_code.clone(), f.description.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            ("failed", None, Some(detail))
        }
    };
    CommandResult { command_id, action: action.into(), status: name.into(), response, error }
}
