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

/// Decimal places a tariff keeps: finer fractions of a real are rounded
/// (half to even), so every JSON number in the documented range is a tariff.
const TARIFF_PLACES: u32 = 6;

/// The JSON number as an exact decimal, from its text (`1.50` arrives as
/// `1.5`, `5e-7` as written), never through float arithmetic, rounded to
/// [`TARIFF_PLACES`] places.
fn decimal(field: &str, n: &serde_json::Number) -> Result<Decimal, FieldError> {
    let invalid = || FieldError::new(field, "must be a decimal amount of reais");
    let text = n.to_string();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().map_err(|_| invalid())?),
        None => (text.as_str(), 0),
    };
    let negative = mantissa.starts_with('-');
    let (whole, fraction) =
        mantissa.trim_start_matches('-').split_once('.').unwrap_or((mantissa.trim_start_matches('-'), ""));
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    // value = digits × 10^shift
    let shift = exponent - i64::try_from(fraction.len()).map_err(|_| invalid())?;
    let places = i64::from(TARIFF_PLACES);
    let value = if digits.is_empty() {
        Decimal::ZERO
    } else if shift >= -places {
        // Exact: at most TARIFF_PLACES places, and small enough (the schema bounds it).
        let text = if shift >= 0 {
            format!("{digits}{}", "0".repeat(usize::try_from(shift).map_err(|_| invalid())?))
        } else {
            let point = usize::try_from(-shift).map_err(|_| invalid())?;
            let padded = format!("{digits:0>width$}", width = point + 1);
            format!("{}.{}", &padded[..padded.len() - point], &padded[padded.len() - point..])
        };
        Decimal::from_str(&text).map_err(|_| invalid())?
    } else {
        // More places than kept: drop digits, rounding half to even.
        let drop = usize::try_from(-shift - places).map_err(|_| invalid())?;
        if drop > digits.len() {
            Decimal::ZERO // the first dropped digit is a leading 0: below half a unit
        } else {
            let (kept, dropped) = digits.split_at(digits.len() - drop);
            let mut units =
                if kept.is_empty() { Decimal::ZERO } else { Decimal::from_str(kept).map_err(|_| invalid())? };
            let first = dropped.chars().next().unwrap_or('0');
            let rest_zero = dropped.chars().skip(1).all(|c| c == '0');
            let odd = units % Decimal::TWO == Decimal::ONE;
            if first > '5' || (first == '5' && (!rest_zero || odd)) {
                units += Decimal::ONE;
            }
            units.set_scale(TARIFF_PLACES).map_err(|_| invalid())?;
            units
        }
    };
    Ok(if negative { -value } else { value }.normalize())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reais(text: &str) -> String {
        let n: serde_json::Number = serde_json::from_str(text).expect("a JSON number");
        decimal("charger.price", &n).map(|d| d.to_string()).unwrap_or_else(|e| e.message)
    }

    #[test]
    fn a_tariff_is_the_numbers_text_rounded_to_six_places_half_to_even() {
        assert_eq!(reais("1.5"), "1.5");
        assert_eq!(reais("1.50"), "1.5");
        assert_eq!(reais("100"), "100");
        assert_eq!(reais("0"), "0");
        assert_eq!(reais("2.5e-3"), "0.0025");
        assert_eq!(reais("1e2"), "100");
        assert_eq!(reais("5e-324"), "0");
        assert_eq!(reais("0.0000005"), "0"); // half, even stays
        assert_eq!(reais("0.0000015"), "0.000002"); // half, odd rounds up
        assert_eq!(reais("0.00000051"), "0.000001");
        assert_eq!(reais("1.23456749"), "1.234567");
        assert_eq!(reais("99.9999999"), "100");
    }
}
