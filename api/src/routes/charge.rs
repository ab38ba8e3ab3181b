//! Charge orchestration (seed 001): `POST /charge/start`, `POST /charge/stop`,
//! the five ad-hoc charge endpoints of seed 002, and session reads.

use std::str::FromStr;

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::StatusCode,
    response::Response,
    Json,
};
use chrono::{DateTime, SubsecRound, Utc};
use commands::{payments::Actor, sessions::StartInput};
use domain::{
    payment::{IntentState, IntentStatus, PaymentMethod},
    session::{SessionKind, SessionState, Tariff},
    terminal::OcppVersion,
    CompanyId, FieldError,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{idempotent, Stored};
use crate::{
    auth::{Caller, Role},
    error::ApiError,
    extract::JsonCommand,
    state::AppState,
};

/// The tariff, as seed 001 spells it (reais).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargerTariff {
    /// Reais per kWh (`1.50`).
    #[schema(value_type = f64, example = 1.50)]
    pub price: serde_json::Number,
    /// Reais per session (`2.00`).
    #[schema(value_type = f64, example = 2.00)]
    pub fixed_connection_cost: serde_json::Number,
}

/// StartChargeDto (seed 001).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartChargeDto {
    /// Station.
    #[schema(example = 10)]
    pub station_id: i64,
    /// Charger (EVSE-001); optional for ad-hoc charges.
    #[schema(example = "EVSE-001")]
    pub charge_point_id: Option<String>,
    /// Connector.
    #[schema(example = 1)]
    pub connector_id: i64,
    /// PIX, CREDIT_CARD, WALLET, VIP, GOOGLE_PAY or APPLE_PAY.
    #[schema(example = "CREDIT_CARD")]
    pub method: String,
    /// Pre-authorization in cents (5000 = R$ 50.00).
    #[schema(example = 5000)]
    pub amount: i64,
    /// Receipt address.
    pub email: String,
    /// CPF (check digits verified).
    pub cpf: Option<String>,
    /// Card token (CREDIT_CARD).
    pub card_token: Option<String>,
    /// Accepted for compatibility; cards are never stored by chargeledger.
    pub save_card: Option<bool>,
    /// Encrypted Apple Pay / Google Pay payload.
    #[schema(value_type = Option<Object>)]
    pub network_token: Option<Value>,
    /// Wallet owner (WALLET).
    pub customer_id: Option<String>,
    /// Tariff.
    pub charger: ChargerTariff,
}

/// `paymentData` of seed 001.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentData {
    /// Gateway order.
    pub order_id: Option<String>,
    /// Gateway charge.
    pub charge_id: Option<String>,
    /// authorized, pending, failed, captured, canceled.
    pub status: String,
    /// PIX copy-and-paste code.
    pub pix_qr_code: Option<String>,
    /// PIX deadline.
    pub pix_expires_at: Option<DateTime<Utc>>,
}

/// The answer of `POST /charge/start` (seed 001).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartChargeResponse {
    /// true.
    pub success: bool,
    /// The session.
    pub session_id: Uuid,
    /// The payment.
    pub payment_data: PaymentData,
}

/// `POST /charge/stop`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopChargeDto {
    /// The session.
    pub session_id: String,
}

/// A session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// Id.
    pub session_id: Uuid,
    /// PREAUTHORIZING, AUTHORIZED, CHARGING, STOPPING, SETTLING, COMPLETED, CANCELED, FAILED.
    pub status: String,
    /// ocpp or adhoc.
    pub kind: String,
    /// Station.
    pub station_id: i64,
    /// Charger.
    pub charge_point_id: String,
    /// Connector.
    pub connector_id: i64,
    /// Charger transaction.
    pub transaction_id: Option<String>,
    /// Energy delivered, Wh.
    pub energy_wh: i64,
    /// Running cost, cents.
    pub running_cost_cents: i64,
    /// Reais per kWh.
    pub price_per_kwh: String,
    /// Reais per session.
    pub fixed_connection_cost: String,
    /// Cents pre-authorized.
    pub authorized_cents: i64,
    /// Cents captured.
    pub captured_cents: Option<i64>,
    /// Cents released.
    pub released_cents: Option<i64>,
    /// Cents refunded.
    pub refunded_cents: i64,
    /// Why it stopped or was canceled.
    pub stop_reason: Option<String>,
    /// The payment intent.
    pub payment_intent_id: Uuid,
    /// Its status.
    pub payment_status: String,
    /// Receipt e-mailed.
    pub receipt_sent: bool,
    /// Refunds gave up (see the events).
    pub refund_dead_lettered: bool,
    /// Started.
    pub started_at: DateTime<Utc>,
}

fn actor(caller: &Caller) -> Actor {
    Actor { company: CompanyId(caller.company_id), actor: caller.actor.clone(), correlation: Uuid::now_v7() }
}

/// The customer a session belongs to.
fn owner(session: &SessionState) -> Option<&str> {
    session.started.as_ref().and_then(|s| s.customer_id.as_deref())
}

fn payment_status(intent: &IntentState) -> &'static str {
    match intent.status() {
        IntentStatus::RequiresCapture => "authorized",
        IntentStatus::Processing | IntentStatus::RequiresAuthorization => "pending",
        IntentStatus::Succeeded => "captured",
        IntentStatus::Canceled | IntentStatus::Expired => "canceled",
        IntentStatus::Failed => "failed",
    }
}

fn payment_data(intent: &IntentState) -> PaymentData {
    let pix = intent.pix.as_ref().filter(|_| intent.status() == IntentStatus::Processing);
    PaymentData {
        order_id: intent.order_id.clone(),
        charge_id: intent.charge_id.clone(),
        status: payment_status(intent).into(),
        pix_qr_code: pix.map(|p| p.qr_code.clone()),
        pix_expires_at: pix.map(|p| p.expires_at),
    }
}

async fn view(state: &AppState, company: CompanyId, id: Uuid, s: &SessionState) -> Result<SessionView, ApiError> {
    let started = s.started.as_ref().ok_or_else(|| ApiError::NotFound("charge session not found".into()))?;
    let intent = state.payments.get(company, started.payment_intent_id).await?;
    Ok(SessionView {
        session_id: id,
        status: s.status.as_str().into(),
        kind: if started.kind == SessionKind::Ocpp { "ocpp" } else { "adhoc" }.into(),
        station_id: started.station_id,
        charge_point_id: started.charge_point_id.clone(),
        connector_id: started.connector_id,
        transaction_id: s.transaction_id.clone(),
        energy_wh: s.energy_wh,
        running_cost_cents: s.cost_cents,
        price_per_kwh: started.tariff.price_per_kwh.to_string(),
        fixed_connection_cost: started.tariff.fixed_connection_cost.to_string(),
        authorized_cents: s.authorized,
        captured_cents: s.settled.as_ref().map(|x| x.captured_cents),
        released_cents: s.settled.as_ref().map(|x| x.released_cents),
        refunded_cents: s.refunded,
        stop_reason: s.stop_reason.clone(),
        payment_intent_id: started.payment_intent_id,
        payment_status: intent.status().as_str().into(),
        receipt_sent: s.receipt.is_some(),
        refund_dead_lettered: s.refund_dead,
        started_at: started.at,
    })
}

/// The JSON number as an exact decimal: the number's shortest text form
/// (`1.50` arrives as `1.5`), never float arithmetic.
fn decimal(field: &str, n: &serde_json::Number) -> Result<Decimal, FieldError> {
    Decimal::from_str(&n.to_string())
        .or_else(|_| Decimal::from_scientific(&n.to_string()))
        .map(|d| d.normalize())
        .map_err(|_| FieldError::new(field, "must be a decimal amount of reais"))
}

/// Validates the DTO into a start, checking the charger and connector for OCPP sessions.
async fn start_input(
    state: &AppState,
    caller: &Caller,
    dto: StartChargeDto,
    kind: SessionKind,
) -> Result<StartInput, ApiError> {
    let mut errors = Vec::new();
    let method = serde_json::from_value::<PaymentMethod>(json!(dto.method))
        .map_err(|_| FieldError::new("method", "must be PIX, CREDIT_CARD, WALLET, VIP, GOOGLE_PAY or APPLE_PAY"));
    // Sponsored sessions are the operator's decision (the role matrix): not a
    // driver's, not a CPMS integration's.
    if !matches!(caller.role, Role::Admin | Role::Operator) && matches!(method, Ok(PaymentMethod::Vip)) {
        return Err(ApiError::Forbidden(format!(
            "role {} cannot start a sponsored (VIP) session",
            caller.role.as_str()
        )));
    }
    let not_negative = |field: &str, d: Result<Decimal, FieldError>| match d {
        Ok(d) if d < Decimal::ZERO => Err(FieldError::new(field, "must not be below zero")),
        other => other,
    };
    let price = not_negative("charger.price", decimal("charger.price", &dto.charger.price));
    let fixed = not_negative(
        "charger.fixed_connection_cost",
        decimal("charger.fixed_connection_cost", &dto.charger.fixed_connection_cost),
    );
    for e in [method.as_ref().err(), price.as_ref().err(), fixed.as_ref().err()].into_iter().flatten() {
        errors.push(e.clone());
    }
    if dto.amount <= 0 {
        errors.push(FieldError::new("amount", "must be above zero (cents)"));
    }
    if !dto.email.contains('@') {
        errors.push(FieldError::new("email", "is not a valid e-mail address"));
    }
    if let Some(cpf) = &dto.cpf {
        if !domain::payment::cpf_valid(cpf) {
            errors.push(FieldError::new("cpf", "is not a valid CPF (check digits)"));
        }
    }
    let charge_point = dto.charge_point_id.clone().unwrap_or_default();
    let mut protocol = None;
    if kind == SessionKind::Ocpp {
        let terminal = domain::TerminalId::parse(&charge_point).ok().map(|id| async move {
            projections::terminals::get(&state.pool, caller.company_id, id.as_str(), state.config.terminal_online).await
        });
        let terminal = match terminal {
            Some(f) => f.await?,
            None => None,
        };
        match terminal {
            None => errors.push(FieldError::new("chargePointId", "is not a terminal of yours")),
            Some(t) => {
                let connected = match &state.gateway {
                    Some(g) if g.is_connected(&t.id) => true,
                    _ => projections::ocpp::charger(&state.pool, caller.company_id, &t.id)
                        .await?
                        .is_some_and(|c| c.connected),
                };
                if !connected && errors.is_empty() {
                    return Err(ApiError::Conflict(format!("{} is offline: nothing was authorized", t.id)));
                }
                let statuses = projections::ocpp::connectors(&state.pool, caller.company_id, &t.id).await?;
                let status = statuses.iter().find(|c| c.connector_id == dto.connector_id).map(|c| c.status.clone());
                match status.as_deref() {
                    Some("Available") => {}
                    Some(other) => errors.push(FieldError::new("connectorId", format!("is {other}, not Available"))),
                    None if t.connectors.iter().any(|c| i64::from(c.id) == dto.connector_id) => {
                        errors.push(FieldError::new("connectorId", "has not reported its status yet"))
                    }
                    None => errors.push(FieldError::new("connectorId", "does not exist on this charger")),
                }
                if let Some(c) = projections::ocpp::charger(&state.pool, caller.company_id, &t.id).await? {
                    protocol = Some(OcppVersion::from_protocol(&c.protocol));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(StartInput {
        kind,
        station_id: dto.station_id,
        charge_point_id: if charge_point.is_empty() {
            format!("adhoc-station-{}", dto.station_id)
        } else {
            charge_point
        },
        connector_id: dto.connector_id,
        protocol,
        method: method.map_err(|e| ApiError::Validation(vec![e]))?,
        amount: dto.amount,
        email: dto.email,
        cpf: dto.cpf,
        card_token: dto.card_token,
        network_token: dto.network_token,
        // A driver's session is its own, whatever the body says.
        customer_id: caller.owner().map(str::to_owned).or(dto.customer_id),
        tariff: Tariff {
            price_per_kwh: price.map_err(|e| ApiError::Validation(vec![e]))?,
            fixed_connection_cost: fixed.map_err(|e| ApiError::Validation(vec![e]))?,
        },
    })
}

async fn start_session(
    state: &AppState,
    caller: &Caller,
    dto: StartChargeDto,
    kind: SessionKind,
) -> Result<Stored, ApiError> {
    let input = start_input(state, caller, dto, kind).await?;
    let started = state.sessions.start(&actor(caller), input).await;
    let (id, session, intent) = match started {
        Ok(x) => x,
        Err(e) => return Err(e.into()),
    };
    if intent.status() == IntentStatus::Failed {
        let mut extensions = serde_json::Map::new();
        extensions.insert("sessionId".into(), json!(id));
        extensions.insert("paymentData".into(), json!(payment_data(&intent)));
        let detail =
            intent.failure.as_ref().map_or("the payment failed".into(), |f| format!("{}: {}", f.code, f.reason));
        return Err(ApiError::PaymentDeclined { detail, extensions });
    }
    let body = StartChargeResponse { success: true, session_id: id, payment_data: payment_data(&intent) };
    let _ = session;
    Ok(Stored { status: StatusCode::OK, location: None, body: json!(body) })
}

/// Start charging: pre-authorize, then remote-start the connector.
#[utoipa::path(post, path = "/charge/start", tag = "Charge orchestration", request_body = StartChargeDto,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = StartChargeResponse), (status = 402, body = crate::error::Problem, description = "Payment declined; nothing sent to the charger"),
        (status = 409, body = crate::error::Problem, description = "Charger offline: nothing authorized"), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    cmd: JsonCommand<StartChargeDto>,
) -> Result<Response, ApiError> {
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    if body.charge_point_id.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::Validation(vec![FieldError::new("chargePointId", "is required")]));
    }
    idempotent(
        &state,
        &caller,
        idempotency_key.as_deref(),
        &fingerprint,
        start_session(&state, &caller, body, SessionKind::Ocpp),
    )
    .await
}

fn session_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("charge session not found".into()))
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
#[utoipa::path(get, path = "/v1/charge-sessions/{id}", tag = "Charge orchestration", params(("id" = Uuid, Path, description = "Session")),
    responses((status = 200, body = SessionView), (status = 404, body = crate::error::Problem)), security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&id)?;
    let company = CompanyId(caller.company_id);
    let session = state.sessions.get(company, id).await?;
    caller.must_own(owner(&session), "charge session")?;
    Ok(Json(view(&state, company, id, &session).await?))
}

/// The chain from the first charger frame to the capture: the session's events,
/// its payment's, and the charger events of its transaction with the frames that caused them.
#[utoipa::path(get, path = "/v1/charge-sessions/{id}/events", tag = "Charge orchestration", params(("id" = Uuid, Path, description = "Session")),
    responses((status = 200, body = Vec<crate::routes::payments::HistoryEvent>), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::routes::payments::HistoryEvent>>, ApiError> {
    let id = session_id(&id)?;
    let company = CompanyId(caller.company_id);
    let session = state.sessions.get(company, id).await?;
    caller.must_own(owner(&session), "charge session")?;
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

/// Refund (part of) a completed session.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundDto {
    /// Cents; all that was captured by default.
    pub amount: Option<i64>,
}

/// Queue a refund of a completed session (retried with backoff; dead-lettered after the last attempt).
#[utoipa::path(post, path = "/v1/charge-sessions/{id}/refunds", tag = "Charge orchestration", request_body = RefundDto,
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

/// Start an ad-hoc EV charging session (a charger not on our gateway).
#[utoipa::path(post, path = "/v1/adhoc-charges/start", tag = "Charges", request_body = StartChargeDto,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = StartChargeResponse), (status = 402, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn adhoc_start(
    State(state): State<AppState>,
    caller: Caller,
    cmd: JsonCommand<StartChargeDto>,
) -> Result<Response, ApiError> {
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    idempotent(
        &state,
        &caller,
        idempotency_key.as_deref(),
        &fingerprint,
        start_session(&state, &caller, body, SessionKind::Adhoc),
    )
    .await
}

/// Progress of an ad-hoc charge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgressDto {
    /// Energy delivered since the start, Wh.
    pub energy_wh: i64,
    /// When measured (default now).
    pub timestamp: Option<DateTime<Utc>>,
}

/// Completion of an ad-hoc charge.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteDto {
    /// Final energy, Wh (default: the last progress).
    pub energy_wh: Option<i64>,
    /// When it ended (default now).
    pub timestamp: Option<DateTime<Utc>>,
}

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
    let id = session_id(&id)?;
    let company = CompanyId(caller.company_id);
    let session = state.sessions.get(company, id).await?;
    adhoc(&session)?;
    caller.must_own(owner(&session), "ad-hoc charge")?;
    Ok(Json(view(&state, company, id, &session).await?))
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Only this status.
    pub status: Option<String>,
    /// Only this station.
    pub station_id: Option<i64>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of sessions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionPage {
    /// Newest first.
    pub data: Vec<projections::sessions::SessionSummary>,
    /// For the next page.
    pub next_cursor: Option<String>,
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
    let limit = super::page::limit(p.limit)?;
    let after = super::page::after(p.cursor.as_deref())?;
    let filter = projections::sessions::ListFilter {
        kind: Some("adhoc"),
        status: p.status.as_deref(),
        station: p.station_id,
        customer: caller.owner(),
    };
    let mut data = projections::sessions::list(&state.pool, caller.company_id, filter, after, limit + 1).await?;
    let next_cursor = super::page::next(&mut data, limit, |l| (l.started_at, l.id));
    Ok(Json(SessionPage { data, next_cursor }))
}
