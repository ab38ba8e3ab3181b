//! Charge orchestration (seed 001): `POST /charge/start`, `POST /charge/stop`,
//! the five ad-hoc charge endpoints of seed 002, and session reads.
//!
//! Handlers only: bodies and rendering are in `dto`, the starts in `start`,
//! the ad-hoc endpoints in `adhoc`; decisions (the checks of a start and of
//! its charger included) belong to [`commands::sessions::Sessions`].

mod adhoc;
mod dto;
mod start;

pub use adhoc::{
    __path_adhoc_complete, __path_adhoc_get, __path_adhoc_list, __path_adhoc_progress, adhoc_complete, adhoc_get,
    adhoc_list, adhoc_progress,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    Json,
};
use commands::payments::Actor;
use domain::{session::SessionState, CompanyId};
use dto::view;
pub use dto::{
    ChargerTariff, CompleteDto, ListParams, PaymentData, ProgressDto, RefundDto, SessionPage, SessionView,
    StartChargeDto, StartChargeResponse, StopChargeDto,
};
use serde_json::{json, Value};
pub use start::{__path_adhoc_start, __path_start, adhoc_start, start};
use uuid::Uuid;

use super::{idempotent, Stored};
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

fn actor(caller: &Caller) -> Actor {
    Actor { company: CompanyId(caller.company_id), actor: caller.actor.clone(), correlation: Uuid::now_v7() }
}

/// The customer a session belongs to.
fn owner(session: &SessionState) -> Option<&str> {
    session.started.as_ref().and_then(|s| s.customer_id.as_deref())
}

fn session_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("charge session not found".into()))
}

/// The session `raw` names, if the caller may read it: its company's, and for
/// a driver its own (`what` names it in the 404).
async fn readable(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    what: &str,
) -> Result<(Uuid, CompanyId, SessionState), ApiError> {
    let id = session_id(raw)?;
    let company = CompanyId(caller.company_id);
    let session = state.sessions.get(company, id).await?;
    caller.must_own(owner(&session), what)?;
    Ok((id, company, session))
}

/// Stop charging: remote stop while CHARGING, void while pre-authorized, the current state when already stopped.
#[utoipa::path(post, path = "/charge/stop", tag = "Charge orchestration", request_body = StopChargeDto,
    responses((status = 200, body = SessionView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    cmd: JsonCommand<StopChargeDto>,
) -> Result<Response, ApiError> {
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    let id = session_id(&body.session_id)?;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let a = actor(&caller);
        caller.must_own(owner(&state.sessions.get(a.company, id).await?), "charge session")?;
        let session = state.sessions.stop(&a, id, "driver", "stopped through POST /charge/stop").await?;
        let body = view(&state, a.company, id, &session).await?;
        Ok(Stored { status: StatusCode::OK, location: None, body: json!(body) })
    })
    .await
}

/// A charge session (state, energy, running cost, payment).
#[utoipa::path(
    operation_id = "getChargeSession",get, path = "/v1/charge-sessions/{id}", tag = "Charge orchestration", params(("id" = Uuid, Path, description = "Session")),
    responses((status = 200, body = SessionView), (status = 404, body = crate::error::Problem)), security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let (id, company, session) = readable(&state, &caller, &id, "charge session").await?;
    Ok(Json(view(&state, company, id, &session).await?))
}

/// The chain from the first charger frame to the capture: the session's events,
/// its payment's, and the charger events of its transaction with the frames that caused them.
#[utoipa::path(
    operation_id = "chargeSessionEvents",get, path = "/v1/charge-sessions/{id}/events", tag = "Charge orchestration", params(("id" = Uuid, Path, description = "Session")),
    responses((status = 200, body = Vec<crate::routes::payments::HistoryEvent>), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::routes::payments::HistoryEvent>>, ApiError> {
    let (id, company, session) = readable(&state, &caller, &id, "charge session").await?;
    let mut events = state.sessions.history(company, id).await?;
    if let (Some(started), Some(tx)) = (&session.started, &session.transaction_id) {
        let charger = format!("charger-{}", started.charge_point_id);
        let linked: Vec<commands::RecordedEvent> = state
            .store
            .read_stream(&charger)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .filter(|e| e.payload.get("transactionId").and_then(Value::as_str) == Some(tx.as_str()))
            .collect();
        let causes: Vec<Uuid> = linked
            .iter()
            .filter_map(|e| e.metadata.get("causationId").and_then(Value::as_str))
            .filter_map(|c| Uuid::parse_str(c).ok())
            .collect();
        let frames =
            state.store.read_stream(&format!("ocpp-{}", started.charge_point_id)).await.map_err(ApiError::internal)?;
        events.extend(frames.into_iter().filter(|f| causes.contains(&f.event_id)));
        events.extend(linked);
    }
    events.sort_by_key(|e| e.position);
    Ok(Json(events.into_iter().map(crate::routes::payments::history_event).collect()))
}

/// Queue a refund of a completed session (retried with backoff; dead-lettered after the last attempt).
#[utoipa::path(
    operation_id = "refundChargeSession",post, path = "/v1/charge-sessions/{id}/refunds", tag = "Charge orchestration", request_body = RefundDto,
    params(("id" = Uuid, Path, description = "Session"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 202, body = SessionView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<RefundDto>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = session_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let a = actor(&caller);
        let session = state.sessions.refund(&a, id, body.amount).await?;
        Ok(Stored {
            status: StatusCode::ACCEPTED,
            location: None,
            body: json!(view(&state, a.company, id, &session).await?),
        })
    })
    .await
}
