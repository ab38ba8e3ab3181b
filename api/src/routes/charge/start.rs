//! Starting a session (`POST /charge/start`, `POST /v1/adhoc-charges/start`):
//! the body is read and authorized here; the service checks it and the charger.

use std::str::FromStr;

use axum::{extract::State, http::StatusCode, response::Response};
use commands::sessions::StartInput;
use domain::{
    payment::{IntentStatus, PaymentMethod},
    session::SessionKind,
    FieldError,
};
use rust_decimal::Decimal;
use serde_json::json;

use super::{actor, dto::payment_data, StartChargeDto, StartChargeResponse};
use crate::{
    auth::{Caller, Role},
    error::ApiError,
    extract::JsonCommand,
    routes::{idempotent, Stored},
    state::AppState,
};

/// The JSON number as an exact decimal: the number's shortest text form
/// (`1.50` arrives as `1.5`), never float arithmetic.
fn decimal(field: &str, n: &serde_json::Number) -> Result<Decimal, FieldError> {
    Decimal::from_str(&n.to_string())
        .or_else(|_| Decimal::from_scientific(&n.to_string()))
        .map(|d| d.normalize())
        .map_err(|_| FieldError::new(field, "must be a decimal amount of reais"))
}

/// Reads the DTO into a start and authorizes what only some roles may ask;
/// the checks of the fields and of the charger are the session service's
/// ([`commands::sessions::Sessions::start`]).
fn start_input(
    state: &AppState,
    caller: &Caller,
    dto: StartChargeDto,
    kind: SessionKind,
) -> Result<StartInput, ApiError> {
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
    let connected_here = kind == SessionKind::Ocpp
        && matches!((&state.gateway, &dto.charge_point_id), (Some(g), Some(id)) if g.is_connected(id));
    Ok(StartInput {
        kind,
        station_id: dto.station_id,
        charge_point_id: dto.charge_point_id,
        connector_id: dto.connector_id,
        connected_here,
        method,
        amount: dto.amount,
        email: dto.email,
        cpf: dto.cpf,
        card_token: dto.card_token,
        network_token: dto.network_token,
        // A driver's session is its own, whatever the body says.
        customer_id: caller.owner().map(str::to_owned).or(dto.customer_id),
        price_per_kwh: decimal("charger.price", &dto.charger.price),
        fixed_connection_cost: decimal("charger.fixed_connection_cost", &dto.charger.fixed_connection_cost),
    })
}

async fn start_session(
    state: &AppState,
    caller: &Caller,
    dto: StartChargeDto,
    kind: SessionKind,
) -> Result<Stored, ApiError> {
    let input = start_input(state, caller, dto, kind)?;
    let (id, _, intent) = state.sessions.start(&actor(caller), input).await?;
    if intent.status() == IntentStatus::Failed {
        let mut extensions = serde_json::Map::new();
        extensions.insert("sessionId".into(), json!(id));
        extensions.insert("paymentData".into(), json!(payment_data(&intent)));
        let detail =
            intent.failure.as_ref().map_or("the payment failed".into(), |f| format!("{}: {}", f.code, f.reason));
        return Err(ApiError::PaymentDeclined { detail, extensions });
    }
    let body = StartChargeResponse { success: true, session_id: id, payment_data: payment_data(&intent) };
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
