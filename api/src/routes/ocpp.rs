//! Commands to chargers and their live state, under `/v1/terminals/{id}/…`.
//!
//! A command is a stream of events (`ocpp_command-<id>`): the API records the
//! request, the gateway holding the connection sends it (one at a time per
//! connection, as OCPP requires) and records the answer, and the API returns
//! that answer. 409 when the charger is offline (unless `deliverOnReconnect`,
//! which queues it for the next connection: 202), 504 after the timeout.

use std::time::Duration;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    Json,
};
use chrono::{SubsecRound, Utc};
use commands::{
    ocpp_commands::{self, CommandStatus},
    Metadata,
};
use domain::{charger::command::OcppCommandRequested, terminal::OcppVersion, FieldError, TerminalId};
use gateways::ocpp::schema;
use projections::ocpp::{ConnectorStatusView, TransactionView};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{idempotent, Stored};
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

const CSMS_ACTIONS_16: &[&str] = &[
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "Reset",
    "ChangeAvailability",
    "UnlockConnector",
    "TriggerMessage",
    "GetConfiguration",
    "ChangeConfiguration",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "ClearCache",
    "DataTransfer",
];
const CSMS_ACTIONS_201: &[&str] = &[
    "RequestStartTransaction",
    "RequestStopTransaction",
    "Reset",
    "ChangeAvailability",
    "UnlockConnector",
    "TriggerMessage",
    "GetVariables",
    "SetVariables",
    "SetChargingProfile",
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "ClearCache",
    "DataTransfer",
];

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

/// The charger a command goes to.
struct Target {
    id: TerminalId,
    version: OcppVersion,
    connected: bool,
}

/// The OCPP call to make.
struct Call {
    action: &'static str,
    payload: Value,
    deliver_on_reconnect: bool,
    timeout_ms: Option<i64>,
}

async fn target(state: &AppState, caller: &Caller, id: &TerminalId) -> Result<Target, ApiError> {
    let (version, connected) = protocol_of(state, caller, id).await?;
    Ok(Target { id: id.clone(), version, connected })
}

async fn protocol_of(state: &AppState, caller: &Caller, id: &TerminalId) -> Result<(OcppVersion, bool), ApiError> {
    let terminal =
        projections::terminals::get(&state.pool, caller.company_id, id.as_str(), state.config.terminal_online)
            .await?
            .ok_or_else(|| ApiError::NotFound("terminal not found".into()))?;
    let charger = projections::ocpp::charger(&state.pool, caller.company_id, id.as_str()).await?;
    let protocol = charger.as_ref().map_or(terminal.ocpp_version.as_str(), |c| c.protocol.as_str()).to_owned();
    let version = if protocol == "2.0.1" { OcppVersion::V201 } else { OcppVersion::V16 };
    let connected = match &state.gateway {
        Some(gateway) if gateway.is_connected(id.as_str()) => true,
        _ => charger.is_some_and(|c| c.connected),
    };
    Ok((version, connected))
}

fn result(command_id: Uuid, action: &str, status: &CommandStatus) -> CommandResult {
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

/// Records the command, waits for its fate, answers.
async fn run_command(state: &AppState, caller: &Caller, target: &Target, call: Call) -> Result<Stored, ApiError> {
    let Target { id, version, connected } = target;
    let (version, connected) = (*version, *connected);
    let Call { action, payload, deliver_on_reconnect, timeout_ms } = call;
    let allowed = match version {
        OcppVersion::V16 => CSMS_ACTIONS_16,
        OcppVersion::V201 => CSMS_ACTIONS_201,
    };
    if !allowed.contains(&action) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "action",
            format!("must be one of {}", allowed.join(", ")),
        )]));
    }
    if let Err((_, problem)) = schema::validate(version, action, false, &payload) {
        return Err(ApiError::Validation(vec![FieldError::new("payload", problem)]));
    }
    if !connected && !deliver_on_reconnect {
        return Err(ApiError::Conflict(format!("{id} is offline; send deliverOnReconnect: true to queue the command")));
    }
    let timeout_ms = timeout_ms.unwrap_or(state.config.ocpp.call_timeout.as_millis() as i64);
    if !(100..=600_000).contains(&timeout_ms) {
        return Err(ApiError::Validation(vec![FieldError::new("timeoutMs", "must be between 100 and 600000")]));
    }
    let command_id = Uuid::now_v7();
    let request = OcppCommandRequested {
        command_id,
        charge_point_id: id.to_string(),
        action: action.into(),
        payload,
        deliver_on_reconnect,
        timeout_ms,
        requested_at: Utc::now().trunc_subsecs(6),
    };
    let metadata = Metadata {
        company_id: Some(caller.company_id),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: caller.actor.clone(),
        command_id: None,
    };
    let recorded = ocpp_commands::request(&state.store, metadata.clone(), request).await.map_err(ApiError::internal)?;
    state.metrics.appended(std::slice::from_ref(&recorded));
    let location = Some(format!("/v1/terminals/{id}/commands/{command_id}"));
    if !connected {
        let body = json!(result(command_id, action, &CommandStatus::Pending));
        return Ok(Stored { status: StatusCode::ACCEPTED, location, body });
    }
    // Queue time plus the charger's answer time, then a little slack.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms as u64) * 2 + Duration::from_secs(1);
    // Woken by appends (this process's and those other processes announce),
    // not by polling; subscribed before the first read so no answer is missed.
    let mut appended = state.store.subscribe();
    loop {
        let view = ocpp_commands::view(&state.store, command_id).await.map_err(ApiError::internal)?;
        let Some(view) = view else { return Err(ApiError::internal("command stream vanished")) };
        match &view.status {
            CommandStatus::Answered(_) => {
                return Ok(Stored {
                    status: StatusCode::OK,
                    location,
                    body: json!(result(command_id, action, &view.status)),
                })
            }
            CommandStatus::Failed(f) if f.reason == "timeout" => {
                return Err(ApiError::GatewayTimeout(format!("{id} did not answer {action} in time")))
            }
            CommandStatus::Failed(f) => {
                let r = result(command_id, action, &view.status);
                return Err(ApiError::BadGateway(format!(
                    "{id} did not carry out {action}: {}",
                    r.error.unwrap_or_else(|| f.reason.clone())
                )));
            }
            CommandStatus::Pending | CommandStatus::Sent if tokio::time::Instant::now() >= deadline => {
                // Give up; if it was never sent, make sure it never will be.
                if view.status == CommandStatus::Pending {
                    let gave_up = ocpp_commands::fail(
                        &state.store,
                        command_id,
                        view.version,
                        metadata.clone(),
                        "timeout",
                        None,
                        Some("not sent in time".into()),
                    )
                    .await
                    .map_err(ApiError::internal)?;
                    if !gave_up {
                        continue;
                    }
                }
                return Err(ApiError::GatewayTimeout(format!("{id} did not answer {action} in time")));
            }
            _ => {
                // A re-check at least every second covers a missed announcement.
                let recheck = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    changed = appended.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep_until(recheck).await;
                        }
                    }
                    _ = tokio::time::sleep_until(recheck) => {}
                }
            }
        }
    }
}

fn terminal_id(raw: &str) -> Result<TerminalId, ApiError> {
    TerminalId::parse(raw).map_err(|_| ApiError::NotFound("terminal not found".into()))
}

/// Send any supported OCPP command to a charger and return its answer.
#[utoipa::path(post, path = "/v1/terminals/{id}/commands", tag = "Charger commands", request_body = CommandRequest,
    params(("id" = String, Path, description = "Terminal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CommandResult, description = "The charger answered"),
        (status = 202, body = CommandResult, description = "Offline: queued for the next connection"),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem, description = "Charger offline"),
        (status = 422, body = crate::error::Problem), (status = 502, body = crate::error::Problem, description = "The charger refused (CALLERROR)"),
        (status = 504, body = crate::error::Problem, description = "No answer in time")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<CommandRequest>,
) -> Result<Response, ApiError> {
    issue(state, caller, id, cmd, |target, body| {
        let allowed = match target.version {
            OcppVersion::V16 => CSMS_ACTIONS_16,
            OcppVersion::V201 => CSMS_ACTIONS_201,
        };
        let Some(action) = allowed.iter().copied().find(|a| *a == body.action) else {
            return Err(ApiError::Validation(vec![FieldError::new(
                "action",
                format!("must be one of {}", allowed.join(", ")),
            )]));
        };
        Ok(Call {
            action,
            payload: body.payload,
            deliver_on_reconnect: body.deliver_on_reconnect,
            timeout_ms: body.timeout_ms,
        })
    })
    .await
}

/// The common path of every command route: operator role, the terminal of the
/// caller's company, idempotency, then `build` turns the body into the OCPP call
/// for the charger's version.
async fn issue<B, F>(
    state: AppState,
    caller: Caller,
    id: String,
    cmd: JsonCommand<B>,
    build: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&Target, B) -> Result<Call, ApiError>,
{
    caller.require_operator()?;
    let id = terminal_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let target = target(&state, &caller, &id).await?;
        let call = build(&target, body)?;
        run_command(&state, &caller, &target, call).await
    })
    .await
}

/// Start charging on a connector (1.6) or EVSE (2.0.1).
#[utoipa::path(post, path = "/v1/terminals/{id}/remote-start", tag = "Charger commands", request_body = RemoteStartRequest,
    params(("id" = String, Path, description = "Terminal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CommandResult), (status = 202, body = CommandResult), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 502, body = crate::error::Problem), (status = 504, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn remote_start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<RemoteStartRequest>,
) -> Result<Response, ApiError> {
    issue(state, caller, id, cmd, |target, body| {
        let (action, mut payload) = match target.version {
            OcppVersion::V16 => ("RemoteStartTransaction", json!({"idTag": body.id_tag})),
            OcppVersion::V201 => (
                "RequestStartTransaction",
                json!({"idToken": {"idToken": body.id_tag, "type": "Central"}, "remoteStartId": remote_start_id()}),
            ),
        };
        match (target.version, body.connector_id, body.evse_id) {
            (OcppVersion::V16, Some(c), _) => payload["connectorId"] = json!(c),
            (OcppVersion::V201, _, Some(e)) => payload["evseId"] = json!(e),
            _ => {}
        }
        if let Some(profile) = body.charging_profile {
            payload["chargingProfile"] = profile;
        }
        Ok(Call { action, payload, deliver_on_reconnect: body.deliver_on_reconnect, timeout_ms: None })
    })
    .await
}

/// A remoteStartId for 2.0.1: positive, increasing, fits in an int32.
fn remote_start_id() -> i64 {
    (Utc::now().timestamp_millis() / 100) % i64::from(i32::MAX)
}

/// Stop a transaction.
#[utoipa::path(post, path = "/v1/terminals/{id}/remote-stop", tag = "Charger commands", request_body = RemoteStopRequest,
    params(("id" = String, Path, description = "Terminal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CommandResult), (status = 202, body = CommandResult), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 502, body = crate::error::Problem), (status = 504, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn remote_stop(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<RemoteStopRequest>,
) -> Result<Response, ApiError> {
    issue(state, caller, id, cmd, |target, body| {
        let (action, payload) = match target.version {
            OcppVersion::V16 => {
                let tx: i64 = body.transaction_id.parse().map_err(|_| {
                    ApiError::Validation(vec![FieldError::new(
                        "transactionId",
                        "an OCPP 1.6 transaction id is an integer",
                    )])
                })?;
                ("RemoteStopTransaction", json!({"transactionId": tx}))
            }
            OcppVersion::V201 => ("RequestStopTransaction", json!({"transactionId": body.transaction_id})),
        };
        Ok(Call { action, payload, deliver_on_reconnect: body.deliver_on_reconnect, timeout_ms: None })
    })
    .await
}

/// Install a charging profile (smart charging).
#[utoipa::path(post, path = "/v1/terminals/{id}/charging-profiles", tag = "Charger commands", request_body = ChargingProfileRequest,
    params(("id" = String, Path, description = "Terminal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CommandResult), (status = 202, body = CommandResult), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem), (status = 502, body = crate::error::Problem), (status = 504, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn charging_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<ChargingProfileRequest>,
) -> Result<Response, ApiError> {
    issue(state, caller, id, cmd, |target, body| {
        let payload = match target.version {
            OcppVersion::V16 => {
                json!({"connectorId": body.connector_id.unwrap_or(0), "csChargingProfiles": body.charging_profile})
            }
            OcppVersion::V201 => json!({"evseId": body.evse_id.unwrap_or(0), "chargingProfile": body.charging_profile}),
        };
        Ok(Call {
            action: "SetChargingProfile",
            payload,
            deliver_on_reconnect: body.deliver_on_reconnect,
            timeout_ms: None,
        })
    })
    .await
}

/// A command's status.
#[utoipa::path(get, path = "/v1/terminals/{id}/commands/{commandId}", tag = "Charger commands",
    params(("id" = String, Path, description = "Terminal id"), ("commandId" = Uuid, Path, description = "Command id")),
    responses((status = 200, body = CommandResult), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, command_id)): Path<(String, Uuid)>,
) -> Result<Json<CommandResult>, ApiError> {
    let view = ocpp_commands::view(&state.store, command_id).await.map_err(ApiError::internal)?;
    match view {
        Some(v) if v.company_id == Some(caller.company_id) && v.request.charge_point_id == id => {
            Ok(Json(result(command_id, &v.request.action, &v.status)))
        }
        _ => Err(ApiError::NotFound("command not found".into())),
    }
}

/// Connector statuses as the charger last reported them.
#[utoipa::path(get, path = "/v1/terminals/{id}/connectors", tag = "Charger commands",
    params(("id" = String, Path, description = "Terminal id")),
    responses((status = 200, body = Vec<ConnectorStatusView>), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn connectors(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<ConnectorStatusView>>, ApiError> {
    let id = terminal_id(&id)?;
    protocol_of(&state, &caller, &id).await?;
    Ok(Json(projections::ocpp::connectors(&state.pool, caller.company_id, id.as_str()).await?))
}

/// Transactions with live telemetry (energy Wh, power W, SoC), newest first.
#[utoipa::path(get, path = "/v1/terminals/{id}/transactions", tag = "Charger commands",
    params(("id" = String, Path, description = "Terminal id")),
    responses((status = 200, body = Vec<TransactionView>), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn transactions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<TransactionView>>, ApiError> {
    let id = terminal_id(&id)?;
    protocol_of(&state, &caller, &id).await?;
    Ok(Json(projections::ocpp::transactions(&state.pool, caller.company_id, id.as_str(), 100).await?))
}
