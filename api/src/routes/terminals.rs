//! The six Terminals endpoints of seed 002. Writes go through the Terminal
//! aggregate into the log; reads come only from the `terminals` read model.
//! Bodies and their rendering are in `dto`.

mod credentials;
mod dto;

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::StatusCode,
    response::Response,
    Json,
};
use commands::{terminals::hash_password, CommandContext, Executed};
pub use credentials::{__path_set_charger_password, set_charger_password, ChargerPasswordRequest};
use domain::{
    terminal::{
        ChangeStatus, Connector, HealthKind, RegisterTerminal, ReportHealth, Severity, TerminalCommand, TerminalStatus,
    },
    FieldError, TerminalId,
};
use dto::{answer, enum_name};
pub use dto::{
    ConnectorRequest, HealthEventRequest, HealthEventResponse, ListParams, RegisterTerminalRequest, StatusRequest,
    TerminalPage,
};
use projections::terminals::{self as rm, TerminalStats, TerminalView};
use serde_json::json;
use uuid::Uuid;

use super::{idempotent, Stored};
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

fn context(caller: &Caller, key: Option<String>, fingerprint: Vec<u8>) -> CommandContext {
    CommandContext {
        company_id: caller.company_id,
        command_id: key,
        request_hash: fingerprint,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: caller.actor.clone(),
    }
}

fn terminal_id(raw: &str) -> Result<TerminalId, ApiError> {
    // An id that cannot exist cannot be found.
    TerminalId::parse(raw).map_err(|_| ApiError::NotFound("terminal not found".into()))
}

/// Waits for the read model to include the command, then reads the terminal.
/// `None` when the projector did not catch up in time (the caller answers 202).
async fn read_after(
    state: &AppState,
    caller: &Caller,
    id: &TerminalId,
    executed: &Executed,
) -> Result<Option<TerminalView>, ApiError> {
    state.metrics.appended(&executed.events);
    // A replayed command appended nothing now: wait for what its stream holds.
    let position = match executed.last_position() {
        Some(position) => Some(position),
        None if executed.replayed => {
            state.store.stream_head(&domain::terminal::Terminal::stream_id(id)).await.map_err(ApiError::internal)?
        }
        None => None,
    };
    if let Some(position) = position {
        let wait = state.config.consistency_wait;
        if !projections::runtime::wait_for(&state.pool, rm::NAME, position, wait).await {
            return Ok(None);
        }
    }
    Ok(rm::get(&state.pool, caller.company_id, id.as_str(), state.config.terminal_online).await?)
}

/// Register a new EV charging terminal.
#[utoipa::path(
    operation_id = "registerTerminal",post, path = "/v1/terminals", tag = "Terminals", request_body = RegisterTerminalRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, body = TerminalView, description = "Registered"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "The id is already registered"),
        (status = 422, body = crate::error::Problem, description = "Invalid fields, or Idempotency-Key reused")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    cmd: JsonCommand<RegisterTerminalRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    let id = TerminalId::parse(&body.id)?;
    let key = idempotency_key.clone();
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint.clone(), async {
        let password_hash = match body.charger_password {
            Some(p) => Some(hash_password(p, "chargerPassword").await?),
            None => None,
        };
        let command = TerminalCommand::Register(RegisterTerminal {
            company_id: domain::CompanyId(caller.company_id),
            terminal_id: id.clone(),
            station_id: body.station_id,
            vendor: body.vendor,
            model: body.model,
            ocpp_version: body.ocpp_version,
            connectors: body
                .connectors
                .into_iter()
                .map(|c| Connector { id: c.id, connector_type: c.connector_type, max_power_w: c.max_power_w })
                .collect(),
            password_hash,
            security_profile: body.security_profile,
            now: super::now(&state),
        });
        let executed =
            commands::terminals::handle(&state.store, &context(&caller, key, fingerprint), &id, command).await?;
        let view = read_after(&state, &caller, &id, &executed).await?;
        Ok(answer(StatusCode::CREATED, Some(format!("/v1/terminals/{id}")), view, executed))
    })
    .await
}

/// The shape of a terminals cursor (`TerminalId::is_shaped`): every such
/// string is a position, the ids after it.
pub(crate) const CURSOR_PATTERN: &str = crate::openapi::constraints::TERMINAL_ID;

/// List terminals (filters: status, station; cursor pagination).
#[utoipa::path(
    operation_id = "listTerminals",get, path = "/v1/terminals", tag = "Terminals", params(ListParams),
    responses((status = 200, body = TerminalPage), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<TerminalPage>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let mut errors = Vec::new();
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 200"));
    }
    if let Some(s) = &params.status {
        if TerminalStatus::parse(s).is_none() {
            errors.push(FieldError::new("status", "is not a terminal status"));
        }
    }
    // The cursor is the last id of the page before: any terminal id is a position.
    let after = match params.cursor {
        Some(c) if !TerminalId::is_shaped(&c) => {
            errors.push(FieldError::new("cursor", "must be a terminal id, as nextCursor is"));
            None
        }
        other => other,
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = rm::ListFilter { status: params.status, station_id: params.station_id, after, limit };
    let page = rm::list(&state.pool, caller.company_id, &filter, state.config.terminal_online).await?;
    Ok(Json(TerminalPage { data: page.items, next_cursor: page.next_after }))
}

/// Get a terminal by id.
#[utoipa::path(
    operation_id = "getTerminal",get, path = "/v1/terminals/{id}", tag = "Terminals", params(("id" = String, Path, description = "Terminal id")),
    responses((status = 200, body = TerminalView), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TerminalView>, ApiError> {
    let id = terminal_id(&id)?;
    rm::get(&state.pool, caller.company_id, id.as_str(), state.config.terminal_online)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("terminal not found".into()))
}

/// Report terminal health (heartbeat, fault, recovery).
#[utoipa::path(post, path = "/v1/terminals/{id}/health-events", tag = "Terminals", request_body = HealthEventRequest,
    params(("id" = String, Path, description = "Terminal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = HealthEventResponse), (status = 401, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn report_health(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<HealthEventRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = terminal_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    let key = idempotency_key.clone();
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint.clone(), async {
        let now = super::now(&state);
        let severity =
            body.severity.unwrap_or(if body.kind == HealthKind::Fault { Severity::Error } else { Severity::Info });
        let occurred_at = body.timestamp.unwrap_or(now);
        let command = TerminalCommand::ReportHealth(ReportHealth {
            company_id: domain::CompanyId(caller.company_id),
            kind: body.kind,
            severity,
            code: body.code.clone(),
            message: body.message.clone(),
            occurred_at,
            now,
        });
        let executed =
            commands::terminals::handle(&state.store, &context(&caller, key, fingerprint), &id, command).await?;
        if let Some(position) = executed.last_position() {
            state.metrics.appended(&executed.events);
            // Best effort: the answer below does not depend on the read model.
            projections::runtime::wait_for(&state.pool, rm::NAME, position, state.config.consistency_wait).await;
        }
        let response = HealthEventResponse {
            terminal_id: id.to_string(),
            kind: enum_name(&body.kind),
            severity: enum_name(&severity),
            code: body.code,
            message: body.message,
            occurred_at,
            terminal_status: executed.outcome.get("status").and_then(|v| v.as_str()).unwrap_or_default().to_owned(),
            version: executed.outcome.get("version").and_then(|v| v.as_i64()).unwrap_or_default(),
        };
        Ok(Stored { status: StatusCode::CREATED, location: None, body: json!(response) })
    })
    .await
}

/// Update terminal status (operator: Available, Unavailable, Faulted).
#[utoipa::path(put, path = "/v1/terminals/{id}/status", tag = "Terminals", request_body = StatusRequest,
    params(("id" = String, Path, description = "Terminal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = TerminalView), (status = 401, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<StatusRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = terminal_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    let status = TerminalStatus::parse(&body.status)
        .ok_or_else(|| ApiError::Validation(vec![FieldError::new("status", "is not a terminal status")]))?;
    let key = idempotency_key.clone();
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint.clone(), async {
        let command = TerminalCommand::ChangeStatus(ChangeStatus {
            company_id: domain::CompanyId(caller.company_id),
            status,
            reason: body.reason,
            now: super::now(&state),
        });
        let executed =
            commands::terminals::handle(&state.store, &context(&caller, key, fingerprint), &id, command).await?;
        let view = read_after(&state, &caller, &id, &executed).await?;
        Ok(answer(StatusCode::OK, None, view, executed))
    })
    .await
}

/// Terminal fleet statistics: counts by status, online ratio, faults in the last 24 h.
#[utoipa::path(get, path = "/v1/terminals/stats", tag = "Terminals",
    responses((status = 200, body = TerminalStats), (status = 401, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn stats(State(state): State<AppState>, caller: Caller) -> Result<Json<TerminalStats>, ApiError> {
    let statuses: Vec<&str> = TerminalStatus::ALL.iter().map(|s| s.as_str()).collect();
    Ok(Json(rm::stats(&state.pool, caller.company_id, state.config.terminal_online, &statuses).await?))
}
