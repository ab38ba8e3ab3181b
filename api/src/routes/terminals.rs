//! The six Terminals endpoints of seed 002. Writes go through the Terminal
//! aggregate into the log; reads come only from the `terminals` read model.

mod credentials;

pub use credentials::{__path_set_charger_password, set_charger_password, ChargerPasswordRequest};

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::StatusCode,
    response::Response,
    Json,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, SubsecRound, Utc};
use commands::{terminals::hash_password, CommandContext, Executed};
use domain::{
    terminal::{
        ChangeStatus, Connector, ConnectorType, HealthKind, OcppVersion, RegisterTerminal, ReportHealth, Severity,
        TerminalCommand, TerminalStatus,
    },
    FieldError, TerminalId,
};
use projections::terminals::{self as rm, TerminalStats, TerminalView};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{idempotent, Stored};
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

/// A connector to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorRequest {
    /// OCPP connector id, from 1.
    pub id: u32,
    /// One of Type1, Type2, CCS1, CCS2, CHAdeMO, GB/T, NACS, Domestic.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "CCS2")]
    pub connector_type: ConnectorType,
    /// Maximum power in watts.
    pub max_power_w: u32,
}

/// Registers a terminal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterTerminalRequest {
    /// Charge point identity used in the OCPP URL (`EVSE-001`); unique on the platform.
    #[schema(example = "EVSE-001")]
    pub id: String,
    /// Station the terminal belongs to.
    #[schema(example = 10)]
    pub station_id: i64,
    /// Manufacturer.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// `1.6` or `2.0.1`.
    #[schema(value_type = String, example = "1.6")]
    pub ocpp_version: OcppVersion,
    /// Connectors.
    pub connectors: Vec<ConnectorRequest>,
    /// OCPP basic-auth password (16 to 40 characters), stored as an Argon2id hash.
    /// Required unless `securityProfile` is 0.
    pub charger_password: Option<String>,
    /// OCPP security profile: 0 (no credentials: the charger connects without a
    /// password; only when given explicitly), 1 (HTTP Basic, the default with a
    /// password) or 2 (TLS and HTTP Basic).
    #[schema(example = 1)]
    pub security_profile: Option<u8>,
}

/// A health report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthEventRequest {
    /// `heartbeat`, `fault` or `recovery`.
    #[schema(value_type = String, example = "fault")]
    pub kind: HealthKind,
    /// `info`, `warning`, `error` or `critical`; defaults to `error` for faults, else `info`.
    /// A fault of `error` or `critical` marks the terminal Faulted; a recovery makes it Available again.
    #[schema(value_type = Option<String>)]
    pub severity: Option<Severity>,
    /// Vendor or OCPP error code.
    pub code: Option<String>,
    /// Free text.
    pub message: Option<String>,
    /// When it happened at the terminal (RFC 3339); defaults to now.
    pub timestamp: Option<DateTime<Utc>>,
}

/// The recorded health report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthEventResponse {
    /// Terminal.
    pub terminal_id: String,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: String,
    /// Code.
    pub code: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The terminal's status after the report.
    pub terminal_status: String,
    /// Version of the terminal's stream after the report.
    pub version: i64,
}

/// Sets a terminal's status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusRequest {
    /// Available, Unavailable or Faulted (the other statuses are reported by the charger).
    #[schema(example = "Unavailable")]
    pub status: String,
    /// Why (shown to operators).
    pub reason: Option<String>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Only terminals in this status.
    pub status: Option<String>,
    /// Only terminals of this station.
    pub station_id: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of terminals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TerminalPage {
    /// Terminals, ordered by id.
    pub data: Vec<TerminalView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

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

/// 2xx with the read model's view, or 202 with the command's outcome when the
/// read model has not caught up yet (the write itself is done).
fn answer(status: StatusCode, location: Option<String>, view: Option<TerminalView>, executed: Executed) -> Stored {
    match view {
        Some(view) => Stored { status, location, body: json!(view) },
        None => Stored { status: StatusCode::ACCEPTED, location, body: executed.outcome },
    }
}

/// Register a new EV charging terminal.
#[utoipa::path(post, path = "/v1/terminals", tag = "Terminals", request_body = RegisterTerminalRequest,
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
            now: now(),
        });
        let executed =
            commands::terminals::handle(&state.store, &context(&caller, key, fingerprint), &id, command).await?;
        let view = read_after(&state, &caller, &id, &executed).await?;
        Ok(answer(StatusCode::CREATED, Some(format!("/v1/terminals/{id}")), view, executed))
    })
    .await
}

/// List terminals (filters: status, station; cursor pagination).
#[utoipa::path(get, path = "/v1/terminals", tag = "Terminals", params(ListParams),
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
    let after = match &params.cursor {
        None => None,
        Some(c) => match URL_SAFE_NO_PAD.decode(c).ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(after) => Some(after),
            None => {
                errors.push(FieldError::new("cursor", "is not a cursor this API returned"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = rm::ListFilter { status: params.status, station_id: params.station_id, after, limit };
    let page = rm::list(&state.pool, caller.company_id, &filter, state.config.terminal_online).await?;
    Ok(Json(TerminalPage { data: page.items, next_cursor: page.next_after.map(|a| URL_SAFE_NO_PAD.encode(a)) }))
}

/// Get a terminal by id.
#[utoipa::path(get, path = "/v1/terminals/{id}", tag = "Terminals", params(("id" = String, Path, description = "Terminal id")),
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
        let now = now();
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
            now: now(),
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

/// The clock, at the precision Postgres keeps (so responses and read models agree).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn enum_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
