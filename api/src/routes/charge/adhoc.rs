//! The ad-hoc charge endpoints of seed 002 (a charger not on our gateway):
//! progress and completion reported by the caller, reads and the list.

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::StatusCode,
    response::Response,
    Json,
};
use chrono::{DateTime, SubsecRound, Utc};
use domain::{
    session::{SessionKind, SessionState},
    FieldError,
};
use serde_json::json;

use super::{actor, dto::view, readable, session_id, CompleteDto, ListParams, ProgressDto, SessionPage, SessionView};
use crate::{
    auth::Caller,
    error::ApiError,
    extract::JsonCommand,
    routes::{idempotent, page, Stored},
    state::AppState,
};

fn adhoc(session: &SessionState) -> Result<(), ApiError> {
    match &session.started {
        Some(s) if s.kind == SessionKind::Adhoc => Ok(()),
        _ => Err(ApiError::NotFound("ad-hoc charge not found".into())),
    }
}

/// What the charger's own system reports on an ad-hoc charge.
enum Report {
    /// Energy so far.
    Progress(i64),
    /// The end, with the final energy (default: the last progress).
    Complete(Option<i64>),
}

/// Applies a report to an ad-hoc charge of the caller's company and answers the session.
async fn adhoc_report(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    idempotency_key: Option<String>,
    fingerprint: &[u8],
    report: Report,
    timestamp: Option<DateTime<Utc>>,
) -> Result<Response, ApiError> {
    let id = session_id(raw_id)?;
    idempotent(state, caller, idempotency_key.as_deref(), fingerprint, async {
        let a = actor(caller);
        adhoc(&state.sessions.get(a.company, id).await?)?;
        let at = timestamp.unwrap_or_else(Utc::now).trunc_subsecs(6);
        let session = match report {
            Report::Progress(energy_wh) => state.sessions.progress(&a, id, energy_wh, at).await?,
            Report::Complete(energy_wh) => state.sessions.complete(&a, id, energy_wh, at).await?,
        };
        Ok(Stored { status: StatusCode::OK, location: None, body: json!(view(state, a.company, id, &session).await?) })
    })
    .await
}

/// Update charging session progress (energy reported by the charger's own system).
#[utoipa::path(put, path = "/v1/adhoc-charges/{id}/progress", tag = "Charges", request_body = ProgressDto,
    params(("id" = Uuid, Path, description = "Session"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = SessionView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn adhoc_progress(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<ProgressDto>,
) -> Result<Response, ApiError> {
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    let report = Report::Progress(body.energy_wh);
    adhoc_report(&state, &caller, &id, idempotency_key, &fingerprint, report, body.timestamp).await
}

/// Complete a charging session: the final energy is settled (partial capture, the rest released).
#[utoipa::path(post, path = "/v1/adhoc-charges/{id}/complete", tag = "Charges", request_body = CompleteDto,
    params(("id" = Uuid, Path, description = "Session"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = SessionView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn adhoc_complete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<CompleteDto>,
) -> Result<Response, ApiError> {
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    let report = Report::Complete(body.energy_wh);
    adhoc_report(&state, &caller, &id, idempotency_key, &fingerprint, report, body.timestamp).await
}

/// Get charge session by ID.
#[utoipa::path(get, path = "/v1/adhoc-charges/{id}", tag = "Charges", params(("id" = Uuid, Path, description = "Session")),
    responses((status = 200, body = SessionView), (status = 404, body = crate::error::Problem)), security(("bearer" = []), ("apiKey" = [])))]
pub async fn adhoc_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let (id, company, session) = readable(&state, &caller, &id, "ad-hoc charge").await?;
    adhoc(&session)?;
    Ok(Json(view(&state, company, id, &session).await?))
}

/// List charging sessions (filters: status, station; cursor pagination).
#[utoipa::path(get, path = "/v1/adhoc-charges", tag = "Charges", params(ListParams),
    responses((status = 200, body = SessionPage), (status = 422, body = crate::error::Problem)), security(("bearer" = []), ("apiKey" = [])))]
pub async fn adhoc_list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<SessionPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let limit = page::limit(p.limit)?;
    let after = page::after(p.cursor.as_deref())?;
    page::one_of("status", p.status.as_deref(), domain::session::SessionStatus::ALL.iter().map(|s| s.as_str()))?;
    let filter = projections::sessions::ListFilter {
        kind: Some("adhoc"),
        status: p.status.as_deref(),
        station: p.station_id,
        customer: caller.owner(),
    };
    let mut data = projections::sessions::list(&state.pool, caller.company_id, filter, after, limit + 1).await?;
    let next_cursor = page::next(&mut data, limit, |l| (l.started_at, l.id));
    Ok(Json(SessionPage { data, next_cursor }))
}
