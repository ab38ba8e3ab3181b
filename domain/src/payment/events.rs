//! Events of payment intents (stream `payment_intent-<id>`). Amounts are
//! integer cents, as on the wire; the aggregate works in `Money` (Decimal).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Operation, PaymentMethod};
use crate::DomainEvent;

/// Everything that can happen to a payment intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum PaymentIntentEvent {
    /// See [`IntentCreated`].
    #[serde(rename = "payment_intent.created")]
    Created(IntentCreated),
    /// See [`OperationRequested`].
    #[serde(rename = "payment_intent.operation_requested")]
    OperationRequested(OperationRequested),
    /// See [`GatewayExchanged`].
    #[serde(rename = "payment_intent.gateway_exchanged")]
    GatewayExchanged(GatewayExchanged),
    /// See [`PixQrIssued`].
    #[serde(rename = "payment_intent.pix_qr_issued")]
    PixQrIssued(PixQrIssued),
    /// See [`Authorized`].
    #[serde(rename = "payment_intent.authorized")]
    Authorized(Authorized),
    /// See [`OperationFailed`].
    #[serde(rename = "payment_intent.operation_failed")]
    OperationFailed(OperationFailed),
    /// See [`OutcomeUnknown`].
    #[serde(rename = "payment_intent.outcome_unknown")]
    OutcomeUnknown(OutcomeUnknown),
    /// See [`Captured`].
    #[serde(rename = "payment_intent.captured")]
    Captured(Captured),
    /// See [`Voided`].
    #[serde(rename = "payment_intent.voided")]
    Voided(Voided),
    /// See [`Refunded`].
    #[serde(rename = "payment_intent.refunded")]
    Refunded(Refunded),
    /// See [`Expired`].
    #[serde(rename = "payment_intent.expired")]
    Expired(Expired),
    /// See [`WebhookReceived`].
    #[serde(rename = "payment_intent.webhook_received")]
    WebhookReceived(WebhookReceived),
}

/// The payer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Customer {
    /// Our customer id (the wallet owner for WALLET intents).
    pub customer_id: Option<String>,
    /// Payer's name, sent to the gateway; published copies of the event carry `null`.
    #[schemars(description = "Name.")]
    pub name: Option<String>,
    /// E-mail (receipts).
    pub email: Option<String>,
    /// CPF, 11 digits.
    pub cpf: Option<String>,
}

/// An intent to collect `amount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntentCreated {
    /// The intent.
    pub intent_id: Uuid,
    /// Company that owns the intent; commands from any other company get not found.
    #[schemars(description = "Owner.")]
    pub company_id: Uuid,
    /// Amount in cents.
    pub amount: i64,
    /// Always BRL.
    pub currency: String,
    /// How it will be paid.
    pub method: PaymentMethod,
    /// The payer.
    pub customer: Customer,
    /// Free text.
    pub description: Option<String>,
    /// Set when the money tops up this wallet (customer id) once collected.
    pub top_up_wallet: Option<String>,
    /// Platform clock when the intent was created.
    #[schemars(description = "When.")]
    pub created_at: DateTime<Utc>,
}

/// A gateway operation began (the intent is `processing` until it settles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationRequested {
    /// Gateway operation now in flight; only one at a time.
    #[schemars(description = "What.")]
    pub operation: Operation,
    /// Cents concerned (authorize: the amount; capture/refund: the amount asked).
    pub amount: i64,
    /// Idempotency-Key sent to the gateway for this operation.
    pub idempotency_key: String,
    /// Platform clock when the operation was requested.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// One request to the payment gateway and its response, redacted of secrets and card data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayExchanged {
    /// The intent's operation this HTTP exchange was part of.
    #[schemars(description = "Operation.")]
    pub operation: Operation,
    /// HTTP method and path.
    pub request_line: String,
    /// Idempotency-Key sent.
    pub idempotency_key: Option<String>,
    /// Request body, redacted.
    pub request: Value,
    /// HTTP status, if any answer came.
    pub http_status: Option<i64>,
    /// Response body, redacted.
    pub response: Value,
    /// ok, declined, error, timeout.
    pub outcome: String,
    /// Round trip, ms.
    pub duration_ms: i64,
    /// When the request was sent to the gateway (microsecond precision).
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A PIX charge is waiting to be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PixQrIssued {
    /// Gateway order.
    pub order_id: String,
    /// Gateway charge.
    pub charge_id: String,
    /// Copy-and-paste code.
    pub qr_code: String,
    /// Image URL.
    pub qr_code_url: Option<String>,
    /// Deadline to pay.
    pub expires_at: DateTime<Utc>,
}

/// Money is held (card pre-authorization, paid PIX, wallet hold, VIP sponsorship).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authorized {
    /// Cents that can be captured.
    pub amount_capturable: i64,
    /// Gateway order (card, PIX).
    pub order_id: Option<String>,
    /// Gateway charge (card, PIX).
    pub charge_id: Option<String>,
    /// PIX: the money is already collected (capturing less refunds the rest).
    pub already_collected: bool,
    /// VIP: no gateway charge; sponsored by the operator.
    pub sponsored: bool,
    /// Platform clock when the authorization was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// An operation failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationFailed {
    /// The operation that failed; a failed authorize fails the whole intent.
    #[schemars(description = "Which.")]
    pub operation: Operation,
    /// Stable code: card_declined, insufficient_funds, gateway_error, …
    pub code: String,
    /// For people.
    pub reason: String,
    /// Acquirer return code of a decline.
    pub decline_code: Option<String>,
    /// Platform clock when the failure was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The gateway did not say how an operation ended (timeout, 5xx): reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutcomeUnknown {
    /// The operation whose outcome is unknown; it stays in flight until reconciled.
    #[schemars(description = "Which.")]
    pub operation: Operation,
    /// Why the outcome is unknown (timeout, 5xx, unexpected status), for reconciliation.
    #[schemars(description = "Why.")]
    pub reason: String,
    /// Platform clock when the unknown outcome was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// Money collected; the rest of the hold released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Captured {
    /// Cents collected.
    pub amount_captured: i64,
    /// Cents of the hold released.
    pub amount_released: i64,
    /// Platform clock when the capture was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The hold was released without collecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Voided {
    /// Cents released.
    pub amount_released: i64,
    /// Platform clock when the void was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// Money returned to the payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Refunded {
    /// Cents returned to the payer by this refund.
    #[schemars(description = "Cents.")]
    pub amount: i64,
    /// Returned as part of a capture (PIX paid more than was kept), not a refund
    /// of captured money.
    pub at_capture: bool,
    /// Platform clock when the refund was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The PIX code expired unpaid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expired {
    /// Platform clock when the expiry was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A gateway webhook about this intent, as received (deduplicated by hook id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookReceived {
    /// Gateway hook id.
    pub hook_id: String,
    /// Event type (charge.paid, …).
    pub event_type: String,
    /// Charge it is about.
    pub charge_id: Option<String>,
    /// The body, redacted.
    pub body: Value,
    /// Platform clock when the webhook was received.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

impl DomainEvent for PaymentIntentEvent {
    const TYPES: &'static [&'static str] = &[
        "payment_intent.created",
        "payment_intent.operation_requested",
        "payment_intent.gateway_exchanged",
        "payment_intent.pix_qr_issued",
        "payment_intent.authorized",
        "payment_intent.operation_failed",
        "payment_intent.outcome_unknown",
        "payment_intent.captured",
        "payment_intent.voided",
        "payment_intent.refunded",
        "payment_intent.expired",
        "payment_intent.webhook_received",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => "payment_intent.created",
            Self::OperationRequested(_) => "payment_intent.operation_requested",
            Self::GatewayExchanged(_) => "payment_intent.gateway_exchanged",
            Self::PixQrIssued(_) => "payment_intent.pix_qr_issued",
            Self::Authorized(_) => "payment_intent.authorized",
            Self::OperationFailed(_) => "payment_intent.operation_failed",
            Self::OutcomeUnknown(_) => "payment_intent.outcome_unknown",
            Self::Captured(_) => "payment_intent.captured",
            Self::Voided(_) => "payment_intent.voided",
            Self::Refunded(_) => "payment_intent.refunded",
            Self::Expired(_) => "payment_intent.expired",
            Self::WebhookReceived(_) => "payment_intent.webhook_received",
        }
    }
}
