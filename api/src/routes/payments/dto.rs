//! The payment routes' request and response bodies, and how an intent is
//! rendered: the wire shapes OpenAPI documents, kept apart from the handlers.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use domain::{
    payment::{IntentState, IntentStatus, PaymentMethod},
    Money,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{error::ApiError, routes::Stored};

/// The payer.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    /// Your customer id (required for WALLET: whose balance).
    pub customer_id: Option<String>,
    /// The payer's name for Pagar.me's customer record (the e-mail stands in if absent).
    pub name: Option<String>,
    /// E-mail (receipts).
    pub email: Option<String>,
    /// CPF (check digits verified).
    pub cpf: Option<String>,
}

/// Create a payment intent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIntentRequest {
    /// Cents (5000 = R$ 50.00), 1 to 10,000,000.
    #[schema(example = 5000, minimum = 1, maximum = 10_000_000)]
    pub amount: i64,
    /// CREDIT_CARD, GOOGLE_PAY, APPLE_PAY, PIX, WALLET or VIP.
    #[schema(value_type = String, example = "CREDIT_CARD")]
    pub method: PaymentMethod,
    /// The payer.
    #[serde(default)]
    pub customer: CustomerInput,
    /// Free text.
    pub description: Option<String>,
}

/// Authorize: the card token or wallet payload.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// CREDIT_CARD: the card token from Pagar.me's tokenization.
    pub card_token: Option<String>,
    /// GOOGLE_PAY / APPLE_PAY: the encrypted payload, passed to Pagar.me as is.
    #[schema(value_type = Option<Object>)]
    pub network_token: Option<Value>,
}

/// Capture or refund an amount (all by default).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmountRequest {
    /// Cents, at least 1; at most `amountCapturable` (capture) or what is left to refund.
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
}

/// Void an intent: it always releases everything, so the body is empty (`{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {}

/// Top up a wallet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUpRequest {
    /// Cents to add to the wallet once collected (5000 = R$ 50.00), 1 to 10,000,000.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub amount: i64,
    /// CREDIT_CARD or PIX.
    #[schema(value_type = String, example = "PIX")]
    pub method: PaymentMethod,
    /// CREDIT_CARD: card token.
    pub card_token: Option<String>,
}

/// A PIX code to show the payer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PixView {
    /// Copy-and-paste code.
    pub qr_code: String,
    /// QR image URL.
    pub qr_code_url: Option<String>,
    /// When the PIX code stops being payable (set by the gateway).
    pub expires_at: DateTime<Utc>,
}

/// Why the last operation failed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// card_declined, insufficient_funds, gateway_rejected, gateway_error, …
    pub code: String,
    /// For people.
    pub reason: String,
    /// Acquirer return code.
    pub decline_code: Option<String>,
}

/// A payment intent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentView {
    /// The intent's id; also the `code` of its Pagar.me order.
    pub id: Uuid,
    /// requires_authorization, processing, requires_capture, succeeded, canceled, failed, expired.
    pub status: String,
    /// Amount asked at creation, in integer cents (5000 = R$ 50.00).
    pub amount: i64,
    /// Cents that can still be captured.
    pub amount_capturable: i64,
    /// Cents captured.
    pub amount_captured: i64,
    /// Cents released without capture.
    pub amount_released: i64,
    /// Cents refunded.
    pub amount_refunded: i64,
    /// Always `BRL`: every amount is in centavos of the Brazilian real.
    pub currency: String,
    /// CREDIT_CARD, GOOGLE_PAY, APPLE_PAY, PIX, WALLET or VIP.
    pub method: String,
    /// The payer.
    #[schema(value_type = Object)]
    pub customer: Value,
    /// Free text given at creation, if any.
    pub description: Option<String>,
    /// Gateway order.
    pub order_id: Option<String>,
    /// Gateway charge.
    pub charge_id: Option<String>,
    /// PIX code while it waits for payment.
    pub pix: Option<PixView>,
    /// Sponsored (VIP): no gateway charge, the operator pays.
    pub sponsored: bool,
    /// Last failure.
    pub last_error: Option<LastError>,
    /// Wallet topped up by this intent.
    pub top_up_wallet: Option<String>,
    /// When the intent was created (from its `payment_intent.created` event).
    pub created_at: Option<DateTime<Utc>>,
}

fn c(m: Money) -> i64 {
    m.to_cents().unwrap_or_default()
}

pub(super) fn view(id: Uuid, s: &IntentState) -> IntentView {
    let created = s.created.as_ref();
    IntentView {
        id,
        status: s.status().as_str().into(),
        amount: created.map_or(0, |c| c.amount),
        amount_capturable: c(s.capturable),
        amount_captured: c(s.captured),
        amount_released: c(s.released),
        amount_refunded: c(s.refunded),
        currency: "BRL".into(),
        method: created.map_or("", |c| c.method.as_str()).into(),
        customer: created.map(|c| json!(c.customer)).unwrap_or_default(),
        description: created.and_then(|c| c.description.clone()),
        order_id: s.order_id.clone(),
        charge_id: s.charge_id.clone(),
        pix: s.pix.as_ref().filter(|_| s.status() == IntentStatus::Processing).map(|p| PixView {
            qr_code: p.qr_code.clone(),
            qr_code_url: p.qr_code_url.clone(),
            expires_at: p.expires_at,
        }),
        sponsored: s.sponsored,
        last_error: s.failure.as_ref().map(|f| LastError {
            code: f.code.clone(),
            reason: f.reason.clone(),
            decline_code: f.decline_code.clone(),
        }),
        top_up_wallet: created.and_then(|c| c.top_up_wallet.clone()),
        created_at: created.map(|c| c.created_at),
    }
}

/// The answer to an operation: 200 with the intent, 202 while its outcome is
/// unknown, 402 with the intent when the payment was declined or failed.
pub(super) fn answer(id: Uuid, state: &IntentState, created: bool) -> Result<Stored, ApiError> {
    let body = view(id, state);
    if state.status() == IntentStatus::Failed {
        let mut extensions = serde_json::Map::new();
        extensions.insert("paymentIntent".into(), json!(body));
        let detail =
            body.last_error.as_ref().map_or("the payment failed".to_owned(), |e| format!("{}: {}", e.code, e.reason));
        return Err(ApiError::PaymentDeclined { detail, extensions });
    }
    let status = if created {
        StatusCode::CREATED
    } else if state.status() == IntentStatus::Processing && state.pix.is_none() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(Stored { status, location: Some(format!("/v1/payment-intents/{id}")), body: json!(body) })
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Only this status.
    #[param(schema_with = crate::openapi::enums::intent_status)]
    pub status: Option<String>,
    /// Only this customer.
    pub customer_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(schema_with = crate::openapi::enums::keyset_cursor)]
    pub cursor: Option<String>,
}

/// A page of intents.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentPage {
    /// Newest first.
    pub data: Vec<projections::payments::IntentSummary>,
    /// For the next page.
    pub next_cursor: Option<String>,
}

/// One event of an intent's history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// Global position.
    pub position: i64,
    /// Version in the intent's stream.
    pub version: i64,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Schema version.
    pub schema_version: i32,
    /// The event's `data` exactly as the log stores it, shaped by its type and version.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Who and why.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// When the event was appended to the log (microsecond precision).
    pub recorded_at: DateTime<Utc>,
    /// Hex SHA-256 chained to the previous event.
    pub hash: String,
}

/// An event as the history endpoints show it.
pub fn history_event(e: commands::RecordedEvent) -> HistoryEvent {
    HistoryEvent {
        position: e.position,
        version: e.stream_version,
        event_type: e.event_type,
        schema_version: e.schema_version,
        data: e.payload,
        metadata: e.metadata,
        recorded_at: e.recorded_at,
        hash: hex::encode(e.hash),
    }
}

/// A wallet balance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    /// Your customer id that owns the wallet.
    pub customer_id: String,
    /// Cents, held money included.
    pub balance: i64,
    /// Cents held by authorized intents.
    pub held: i64,
    /// Cents that can be held.
    pub available: i64,
}
