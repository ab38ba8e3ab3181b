//! The charge routes' request and response bodies, and how a session is
//! rendered: the wire shapes OpenAPI documents, kept apart from the handlers.

use chrono::{DateTime, Utc};
use domain::{
    payment::{IntentState, IntentStatus},
    session::{SessionKind, SessionState},
    CompanyId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

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
    /// The company's station id, a positive integer.
    #[schema(example = 10)]
    pub station_id: i64,
    /// Charger (EVSE-001); optional for ad-hoc charges.
    #[schema(example = "EVSE-001")]
    pub charge_point_id: Option<String>,
    /// OCPP connector id on the charger (0 or more); must be Available for an OCPP start.
    #[schema(example = 1)]
    pub connector_id: i64,
    /// PIX, CREDIT_CARD, WALLET, VIP, GOOGLE_PAY or APPLE_PAY.
    #[schema(example = "CREDIT_CARD")]
    pub method: String,
    /// Pre-authorization in cents (5000 = R$ 50.00), 1 to 10,000,000.
    #[schema(example = 5000, minimum = 1, maximum = 10_000_000)]
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
    /// The tariff in reais (per kWh and per session), fixed for the session.
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
    /// Always `true`; a declined payment answers 402 with a problem instead.
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
    /// The session's id, as the start returned it.
    pub session_id: Uuid,
    /// PREAUTHORIZING, AUTHORIZED, CHARGING, STOPPING, SETTLING, COMPLETED, CANCELED, FAILED.
    pub status: String,
    /// ocpp or adhoc.
    pub kind: String,
    /// The company's station id the session runs at.
    pub station_id: i64,
    /// Charge point id: the terminal for OCPP, `adhoc-station-<stationId>` for an
    /// ad-hoc session started without one.
    pub charge_point_id: String,
    /// OCPP connector id on the charger, as given at the start.
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
    /// When the session was started, before its pre-authorization.
    pub started_at: DateTime<Utc>,
}

/// Refund (part of) a completed session.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundDto {
    /// Cents, at least 1; all that was captured by default.
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
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

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Only this status.
    #[param(schema_with = crate::openapi::enums::session_status)]
    pub status: Option<String>,
    /// Only this station.
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    pub station_id: Option<i64>,
    /// 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(schema_with = crate::openapi::enums::keyset_cursor)]
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

fn payment_status(intent: &IntentState) -> &'static str {
    match intent.status() {
        IntentStatus::RequiresCapture => "authorized",
        IntentStatus::Processing | IntentStatus::RequiresAuthorization => "pending",
        IntentStatus::Succeeded => "captured",
        IntentStatus::Canceled | IntentStatus::Expired => "canceled",
        IntentStatus::Failed => "failed",
    }
}

pub(super) fn payment_data(intent: &IntentState) -> PaymentData {
    let pix = intent.pix.as_ref().filter(|_| intent.status() == IntentStatus::Processing);
    PaymentData {
        order_id: intent.order_id.clone(),
        charge_id: intent.charge_id.clone(),
        status: payment_status(intent).into(),
        pix_qr_code: pix.map(|p| p.qr_code.clone()),
        pix_expires_at: pix.map(|p| p.expires_at),
    }
}

pub(super) async fn view(
    state: &AppState,
    company: CompanyId,
    id: Uuid,
    s: &SessionState,
) -> Result<SessionView, ApiError> {
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
