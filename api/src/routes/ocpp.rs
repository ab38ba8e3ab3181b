//! Commands to chargers and their live state, under `/v1/terminals/{id}/…`.
//!
//! A command is a stream of events (`ocpp_command-<id>`): the API records the
//! request, the gateway holding the connection sends it (one at a time per
//! connection, as OCPP requires) and records the answer, and the API returns
//! that answer. 409 when the charger is offline (unless `deliverOnReconnect`,
//! which queues it for the next connection: 202), 504 after the timeout.
//!
//! Handlers only: bodies and rendering are in `dto`, recording and waiting in
//! `run`, and the OCPP payloads come from [`domain::charger::requests`].

mod dto;
mod run;

use axum::{
    extract::{Path, State},
    response::Response,
    Json,
};
use chrono::Utc;
use commands::ocpp_commands;
use domain::{
    charger::requests::{self, ChargerRequest},
    terminal::OcppVersion,
    FieldError, TerminalId,
};
use dto::result;
pub use dto::{ChargingProfileRequest, CommandRequest, CommandResult, RemoteStartRequest, RemoteStopRequest};
use projections::ocpp::{ConnectorStatusView, TransactionView};
use run::{allowed_action, run_command, Call, Target};
use uuid::Uuid;

use super::idempotent;
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

/// The terminal `id` of the caller's company as a command's target.
async fn target(state: &AppState, caller: &Caller, id: &TerminalId) -> Result<Target, ApiError> {
    let (version, connected) = protocol_of(state, caller, id).await?;
    Ok(Target { id: id.clone(), version, connected })
}

/// The protocol terminal `id` speaks (the one it last connected with, else the
/// registered one) and whether it is connected now; 404 for a terminal that is
/// not the caller's company's.
async fn protocol_of(state: &AppState, caller: &Caller, id: &TerminalId) -> Result<(OcppVersion, bool), ApiError> {
    let terminal =
        projections::terminals::get(&state.pool, caller.company_id, id.as_str(), state.config.terminal_online)
            .await?
            .ok_or_else(|| ApiError::NotFound("terminal not found".into()))?;
    let charger = projections::ocpp::charger(&state.pool, caller.company_id, id.as_str()).await?;
    let protocol = charger.as_ref().map_or(terminal.ocpp_version.as_str(), |c| c.protocol.as_str()).to_owned();
    let version = OcppVersion::from_protocol(&protocol);
    let connected = match &state.gateway {
        Some(gateway) if gateway.is_connected(id.as_str()) => true,
        _ => charger.is_some_and(|c| c.connected),
    };
    Ok((version, connected))
}

/// An id that cannot exist cannot be found.
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
        let action = allowed_action(target.version, &body.action)?;
        Ok(Call {
            request: ChargerRequest { action, payload: body.payload },
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

/// Where a request applies: 1.6 names a connector, 2.0.1 an EVSE, and each
/// ignores the other's field.
fn place(version: OcppVersion, connector_id: Option<i64>, evse_id: Option<i64>) -> Option<i64> {
    match version {
        OcppVersion::V16 => connector_id,
        OcppVersion::V201 => evse_id,
    }
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
        let connector = place(target.version, body.connector_id, body.evse_id);
        let remote_start_id = requests::remote_start_id(Utc::now());
        let mut request = requests::remote_start(target.version, connector, &body.id_tag, remote_start_id);
        if let Some(profile) = body.charging_profile {
            request.payload["chargingProfile"] = profile;
        }
        Ok(Call::new(request, body.deliver_on_reconnect))
    })
    .await
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
        let request = requests::try_remote_stop(target.version, &body.transaction_id)
            .map_err(|e| ApiError::Validation(vec![FieldError::new("transactionId", e.to_string())]))?;
        Ok(Call::new(request, body.deliver_on_reconnect))
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
        let connector = place(target.version, body.connector_id, body.evse_id);
        let request = requests::set_charging_profile(target.version, connector, body.charging_profile);
        Ok(Call::new(request, body.deliver_on_reconnect))
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
    Path((id, command_id)): Path<(String, String)>,
) -> Result<Json<CommandResult>, ApiError> {
    // Not a command id is not found, like an unknown one (axum's own
    // rejection would be a text/plain 400).
    let not_found = || ApiError::NotFound("command not found".into());
    let command_id = Uuid::parse_str(&command_id).map_err(|_| not_found())?;
    let view = ocpp_commands::view(&state.store, command_id).await.map_err(ApiError::internal)?;
    match view {
        Some(v) if v.company_id == Some(caller.company_id) && v.request.charge_point_id == id => {
            Ok(Json(result(command_id, &v.request.action, &v.status)))
        }
        _ => Err(not_found()),
    }
}

/// Connector statuses as the charger last reported them.
#[utoipa::path(
    operation_id = "terminalConnectors",get, path = "/v1/terminals/{id}/connectors", tag = "Charger commands",
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
