//! The payment gateway port: what the payment service needs from Pagar.me (or
//! the simulator). Every call returns the exchanges it made, redacted, so the
//! intent's stream records each request and response.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::payment::{Customer, PaymentMethod};
use serde_json::Value;
use uuid::Uuid;

/// One HTTP exchange with the gateway, redacted of secrets and card data.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// `POST /core/v5/orders`.
    pub request_line: String,
    /// Idempotency-Key sent.
    pub idempotency_key: Option<String>,
    /// Request body, redacted.
    pub request: Value,
    /// HTTP status, if an answer came.
    pub http_status: Option<i64>,
    /// Response body, redacted.
    pub response: Value,
    /// ok, declined, error, timeout.
    pub outcome: String,
    /// Round trip.
    pub duration_ms: i64,
    /// When the request was sent (microsecond precision).
    pub at: DateTime<Utc>,
}

/// Why a gateway call did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// The issuer or the acquirer said no.
    #[error("declined: {message}")]
    Declined {
        /// Acquirer return code.
        code: Option<String>,
        /// Acquirer message.
        message: String,
    },
    /// The gateway refused the request for good (4xx).
    #[error("rejected ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: i64,
        /// The gateway's message and field errors.
        message: String,
    },
    /// No answer, or a 5xx: the outcome is not known.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// A gateway call's result and the exchanges it made.
#[derive(Debug, Clone)]
pub struct Called<T> {
    /// The call's outcome, or why it did not succeed (`Unknown`: no answer).
    pub result: Result<T, GatewayError>,
    /// What went over the wire.
    pub exchanges: Vec<Exchange>,
}

/// Pre-authorize (card and wallets) or issue a PIX code.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Our intent id: the order `code`, used to find the order again.
    pub intent_id: Uuid,
    /// Amount to pre-authorize or to ask by PIX, in integer cents of BRL.
    pub amount: i64,
    /// How the payer pays; picks the order's payment block (card, wallet token, PIX).
    pub method: PaymentMethod,
    /// Card token (CREDIT_CARD).
    pub card_token: Option<String>,
    /// Encrypted Google Pay / Apple Pay payload.
    pub network_token: Option<Value>,
    /// The payer.
    pub customer: Customer,
    /// PIX validity in seconds.
    pub pix_expires_in: i64,
    /// Description on the order item.
    pub description: String,
    /// Idempotency-Key for the gateway.
    pub idempotency_key: String,
}

/// A charge as the gateway sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeSnapshot {
    /// The gateway's order id (`or_…` on Pagar.me).
    pub order_id: String,
    /// The gateway's charge id (`ch_…` on Pagar.me); capture, cancel and fetch use it.
    pub charge_id: String,
    /// The charge's status, mapped from the gateway's charge and last transaction.
    pub status: ChargeStatus,
    /// Cents authorized or asked.
    pub amount: i64,
    /// Cents collected.
    pub paid_amount: i64,
    /// Cents canceled or refunded.
    pub canceled_amount: i64,
    /// PIX code, while waiting.
    pub pix: Option<PixCode>,
}

/// A PIX code.
#[derive(Debug, Clone, PartialEq)]
pub struct PixCode {
    /// Copy-and-paste code.
    pub qr_code: String,
    /// Image URL.
    pub qr_code_url: Option<String>,
    /// When the PIX code stops being payable (set by the gateway).
    pub expires_at: DateTime<Utc>,
}

/// Charge status, mapped from the gateway's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum ChargeStatus {
    /// Pre-authorized, waiting for capture.
    Authorized,
    /// Waiting for the payer (PIX).
    WaitingPayment,
    /// Collected: the gateway says the charge is `paid`.
    Paid,
    /// Canceled or fully refunded.
    Canceled,
    /// Failed or declined (with the acquirer's code and message).
    Failed {
        /// Acquirer return code.
        code: Option<String>,
        /// The gateway's explanation for people (Pagar.me: acquirer message or first error).
        message: String,
    },
    /// Anything else, as the gateway spelled it.
    Other(String),
}

/// The gateway.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Name for logs and events (`pagarme`, `simulator`).
    fn name(&self) -> &'static str;
    /// Pre-authorize a card (capture later) or issue a PIX code.
    async fn authorize(&self, request: &AuthorizeRequest) -> Called<ChargeSnapshot>;
    /// Capture `amount` of a pre-authorized charge (the rest is released).
    async fn capture(&self, charge_id: &str, amount: i64, idempotency_key: &str) -> Called<ChargeSnapshot>;
    /// Cancel a charge before capture, or refund (part of) it after.
    async fn cancel(&self, charge_id: &str, amount: Option<i64>, idempotency_key: &str) -> Called<ChargeSnapshot>;
    /// The charge as it stands.
    async fn fetch_charge(&self, charge_id: &str) -> Called<ChargeSnapshot>;
    /// The charge of the order with this code (our intent id), if any.
    async fn find_by_code(&self, code: &str) -> Called<Option<ChargeSnapshot>>;
}
