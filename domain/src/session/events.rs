//! Events of charge sessions (stream `charge_session-<id>`). Money in cents,
//! tariff in decimal strings (reais), energy in Wh.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{payment::PaymentMethod, DomainEvent, EventDecodeError};

/// The price a session was started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tariff {
    /// Reais per kWh, exact (`"1.50"`).
    #[schemars(with = "String")]
    pub price_per_kwh: Decimal,
    /// Reais per session, exact (`"2.00"`).
    #[schemars(with = "String")]
    pub fixed_connection_cost: Decimal,
}

/// How the session reaches its charger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// On our OCPP gateway: remote start/stop, meter values from the charger.
    Ocpp,
    /// On a charger we do not reach: progress reported through the API.
    Adhoc,
}

/// Everything that can happen to a charge session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum SessionEvent {
    /// See [`SessionStarted`].
    #[serde(rename = "charge_session.started")]
    Started(SessionStarted),
    /// The payment is authorized: `amount` cents are held.
    #[serde(rename = "charge_session.payment_authorized")]
    PaymentAuthorized(Amount),
    /// The payment failed; nothing was sent to the charger.
    #[serde(rename = "charge_session.payment_failed")]
    PaymentFailed(Reason),
    /// See [`RemoteStartSent`].
    #[serde(rename = "charge_session.remote_start_sent")]
    RemoteStartSent(RemoteStartSent),
    /// See [`ChargingStarted`].
    #[serde(rename = "charge_session.charging_started")]
    ChargingStarted(ChargingStarted),
    /// See [`Progress`].
    #[serde(rename = "charge_session.progress_recorded")]
    ProgressRecorded(Progress),
    /// Stop asked: by the driver, because the authorized amount is reached, or the charger never started.
    #[serde(rename = "charge_session.stop_requested")]
    StopRequested(Reason),
    /// See [`Progress`]: the final reading.
    #[serde(rename = "charge_session.charging_stopped")]
    ChargingStopped(Progress),
    /// See [`Settlement`].
    #[serde(rename = "charge_session.settlement_computed")]
    SettlementComputed(Settlement),
    /// See [`Settled`].
    #[serde(rename = "charge_session.settled")]
    Settled(Settled),
    /// A settlement (capture) attempt failed; it will be retried.
    #[serde(rename = "charge_session.settlement_failed")]
    SettlementFailed(Attempt),
    /// Ended before charging; the payment was voided.
    #[serde(rename = "charge_session.canceled")]
    Canceled(Reason),
    /// Money must go back to the payer.
    #[serde(rename = "charge_session.refund_requested")]
    RefundRequested(Amount),
    /// A refund attempt failed; it will be retried.
    #[serde(rename = "charge_session.refund_failed")]
    RefundFailed(Attempt),
    /// The refund went through.
    #[serde(rename = "charge_session.refunded")]
    Refunded(Amount),
    /// Every refund attempt failed: someone must look.
    #[serde(rename = "charge_session.refund_dead_lettered")]
    RefundDeadLettered(Attempt),
    /// See [`ReceiptSent`].
    #[serde(rename = "charge_session.receipt_sent")]
    ReceiptSent(ReceiptSent),
    /// A receipt could not be sent; it will be retried.
    #[serde(rename = "charge_session.receipt_failed")]
    ReceiptFailed(Attempt),
}

/// A session began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionStarted {
    /// The session.
    pub session_id: Uuid,
    /// Company the session belongs to (the one that started it).
    #[schemars(description = "Owner.")]
    pub company_id: Uuid,
    /// OCPP or ad-hoc.
    pub kind: SessionKind,
    /// Station the charger belongs to; a positive integer.
    #[schemars(description = "Station.")]
    pub station_id: i64,
    /// Charge point the driver uses (our terminal id for OCPP sessions).
    #[schemars(description = "Charger.")]
    pub charge_point_id: String,
    /// Connector to charge on, 0 or more (sent as the EVSE id to 2.0.1 chargers).
    #[schemars(description = "Connector.")]
    pub connector_id: i64,
    /// Payment method.
    pub method: PaymentMethod,
    /// Pre-authorization, cents.
    pub preauth_amount: i64,
    /// Receipt address.
    pub email: String,
    /// Payer's CPF.
    pub cpf: Option<String>,
    /// The tariff, fixed for the session.
    pub tariff: Tariff,
    /// The payment intent.
    pub payment_intent_id: Uuid,
    /// Id tag given to the charger (links its transaction to this session).
    pub id_tag: String,
    /// Platform clock when the session was started.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
    /// The customer the session belongs to (a driver's own sessions; the
    /// wallet owner). Schema version 2; absent in version 1.
    #[serde(default)]
    pub customer_id: Option<String>,
}

/// An amount in cents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Amount {
    /// Amount in cents: held (payment authorized), to refund, or refunded.
    #[schemars(description = "Cents.")]
    pub amount: i64,
    /// Why (refunds).
    pub reason: Option<String>,
    /// Platform clock when the authorization, refund request or refund was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reason {
    /// Stable code.
    pub code: String,
    /// For people.
    pub detail: String,
    /// When it happened (for `budget_exhausted`: the time of the reading that hit the limit).
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A remote start went to the charger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStartSent {
    /// The OCPP command.
    pub command_id: Uuid,
    /// Platform clock when the remote start command was issued.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The charger started the transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargingStarted {
    /// The charger's transaction id.
    pub transaction_id: String,
    /// Register at start, Wh.
    pub meter_start_wh: i64,
    /// When the charger says the transaction started (ad-hoc: the first reported progress).
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// Energy delivered so far and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Progress {
    /// Energy delivered, Wh.
    pub energy_wh: i64,
    /// Cost so far, cents.
    pub cost_cents: i64,
    /// When measured.
    pub at: DateTime<Utc>,
}

/// What the driver pays: fixed cost + price × kWh, rounded once to cents (half
/// away from zero); at most what was authorized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settlement {
    /// Energy, Wh.
    pub energy_wh: i64,
    /// Exact cost in reais before rounding.
    #[schemars(with = "String")]
    pub cost_exact: Decimal,
    /// Cost in cents.
    pub cost_cents: i64,
    /// Cents to capture: min(cost, authorized).
    pub capture_cents: i64,
    /// Cents to release.
    pub release_cents: i64,
    /// When charging stopped, as the charger reported it (ad-hoc: the caller's time).
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The capture went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settled {
    /// Cents captured.
    pub captured_cents: i64,
    /// Cents released.
    pub released_cents: i64,
    /// Platform clock when the capture was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A failed attempt of a queue (settlement, refund, receipt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attempt {
    /// Attempt number, from 1.
    pub attempt: u32,
    /// What went wrong.
    pub reason: String,
    /// When the next attempt is due (none: no more attempts).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Platform clock when the attempt failed.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The receipt went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptSent {
    /// E-mail address the receipt went to; published copies carry `null`.
    #[schemars(description = "Recipient.")]
    pub to: String,
    /// Message-ID of the e-mail.
    pub message_id: String,
    /// Platform clock once the mailer accepted the e-mail.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

impl DomainEvent for SessionEvent {
    const TYPES: &'static [&'static str] = &[
        "charge_session.started",
        "charge_session.payment_authorized",
        "charge_session.payment_failed",
        "charge_session.remote_start_sent",
        "charge_session.charging_started",
        "charge_session.progress_recorded",
        "charge_session.stop_requested",
        "charge_session.charging_stopped",
        "charge_session.settlement_computed",
        "charge_session.settled",
        "charge_session.settlement_failed",
        "charge_session.canceled",
        "charge_session.refund_requested",
        "charge_session.refund_failed",
        "charge_session.refunded",
        "charge_session.refund_dead_lettered",
        "charge_session.receipt_sent",
        "charge_session.receipt_failed",
    ];

    /// `charge_session.started` is at version 2 (it gained `customerId`).
    fn current_version(event_type: &str) -> u32 {
        if event_type == "charge_session.started" {
            2
        } else {
            1
        }
    }

    /// Version 1 of `charge_session.started` is version 2 without an owner:
    /// the payload reads as it is (`customerId` absent).
    fn upcast(
        event_type: &str,
        version: u32,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, EventDecodeError> {
        match (event_type, version) {
            ("charge_session.started", 1 | 2) => Ok(payload),
            (_, 1) => Ok(payload),
            _ => Err(EventDecodeError::UnknownVersion { event_type: event_type.to_owned(), version }),
        }
    }

    fn event_type(&self) -> &'static str {
        match self {
            Self::Started(_) => "charge_session.started",
            Self::PaymentAuthorized(_) => "charge_session.payment_authorized",
            Self::PaymentFailed(_) => "charge_session.payment_failed",
            Self::RemoteStartSent(_) => "charge_session.remote_start_sent",
            Self::ChargingStarted(_) => "charge_session.charging_started",
            Self::ProgressRecorded(_) => "charge_session.progress_recorded",
            Self::StopRequested(_) => "charge_session.stop_requested",
            Self::ChargingStopped(_) => "charge_session.charging_stopped",
            Self::SettlementComputed(_) => "charge_session.settlement_computed",
            Self::Settled(_) => "charge_session.settled",
            Self::SettlementFailed(_) => "charge_session.settlement_failed",
            Self::Canceled(_) => "charge_session.canceled",
            Self::RefundRequested(_) => "charge_session.refund_requested",
            Self::RefundFailed(_) => "charge_session.refund_failed",
            Self::Refunded(_) => "charge_session.refunded",
            Self::RefundDeadLettered(_) => "charge_session.refund_dead_lettered",
            Self::ReceiptSent(_) => "charge_session.receipt_sent",
            Self::ReceiptFailed(_) => "charge_session.receipt_failed",
        }
    }
}
