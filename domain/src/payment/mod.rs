//! The `PaymentIntent` aggregate: collect an amount from a payer with
//! pre-authorization and late (partial) capture, as Stripe's PaymentIntents do.
//!
//! Lifecycle: `requires_authorization` → (`processing`) → `requires_capture` →
//! (`processing`) → `succeeded`, or `canceled`, `failed`, `expired`. Every gateway
//! operation is requested first (`processing`), then settled with what the
//! gateway said — or recorded as unknown, to be reconciled, never repeated.
//! Invariant: captured + released + refunded ≤ authorized, refunded ≤ captured.

mod decide;
mod error;
mod events;
#[cfg(test)]
mod tests;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use decide::{cpf_valid, email_valid};
pub use error::PaymentError;
pub use events::*;

use crate::{Aggregate, CompanyId, Money};

/// How the payer pays (seed 001 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    /// Card token; pre-authorized, captured later.
    CreditCard,
    /// Encrypted Google Pay token.
    GooglePay,
    /// Encrypted Apple Pay token.
    ApplePay,
    /// PIX QR code; collected when paid.
    Pix,
    /// A hold on the customer's digital balance.
    Wallet,
    /// Sponsored: no charge.
    Vip,
}

impl PaymentMethod {
    /// Wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CreditCard => "CREDIT_CARD",
            Self::GooglePay => "GOOGLE_PAY",
            Self::ApplePay => "APPLE_PAY",
            Self::Pix => "PIX",
            Self::Wallet => "WALLET",
            Self::Vip => "VIP",
        }
    }

    /// Whether the payment goes through the card/PIX gateway.
    pub fn uses_gateway(&self) -> bool {
        !matches!(self, Self::Wallet | Self::Vip)
    }
}

/// A gateway operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Pre-authorize (or issue a PIX code).
    Authorize,
    /// Collect all or part of the hold (PIX: keep part, refunding the rest).
    #[schemars(description = "Collect.")]
    Capture,
    /// Release the hold.
    Void,
    /// Return collected money.
    Refund,
}

/// Status as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Created, not yet authorized.
    RequiresAuthorization,
    /// A gateway operation is in flight or its outcome is unknown.
    Processing,
    /// Authorized; `amount_capturable` can be captured.
    RequiresCapture,
    /// Captured, in full or in part; captured money can still be refunded.
    Succeeded,
    /// Voided before or after authorization, without collecting anything.
    Canceled,
    /// Authorization failed.
    Failed,
    /// A PIX code expired unpaid.
    Expired,
}

impl IntentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [IntentStatus; 7] = [
        Self::RequiresAuthorization,
        Self::Processing,
        Self::RequiresCapture,
        Self::Succeeded,
        Self::Canceled,
        Self::Failed,
        Self::Expired,
    ];

    /// Wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RequiresAuthorization => "requires_authorization",
            Self::Processing => "processing",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }
}

/// An operation in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The gateway operation awaiting its settlement.
    pub operation: Operation,
    /// Amount asked.
    pub amount: Money,
    /// Gateway idempotency key.
    pub idempotency_key: String,
}

/// Folded state of an intent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntentState {
    /// Creation (None: no such intent).
    pub created: Option<IntentCreated>,
    /// Status when nothing is in flight.
    pub settled: Option<IntentStatus>,
    /// Operation in flight.
    pub pending: Option<Pending>,
    /// Amount held at authorization (its capturable amount then).
    pub authorized: Money,
    /// Still capturable.
    pub capturable: Money,
    /// Amount the capture collected; zero until captured.
    pub captured: Money,
    /// Released without collecting.
    pub released: Money,
    /// Returned (refunds, and what a PIX capture gave back).
    pub refunded: Money,
    /// The part of `refunded` a PIX capture gave back.
    pub returned_at_capture: Money,
    /// Gateway order.
    pub order_id: Option<String>,
    /// Gateway charge.
    pub charge_id: Option<String>,
    /// PIX: collected at authorization.
    pub already_collected: bool,
    /// A VIP intent, held without a gateway and sponsored by the operator.
    pub sponsored: bool,
    /// PIX code.
    pub pix: Option<PixQrIssued>,
    /// Last failure.
    pub failure: Option<OperationFailed>,
    /// Refunds made (for their idempotency keys).
    pub refunds: u32,
    /// Gateway webhooks already recorded, by hook id.
    pub hooks: std::collections::BTreeSet<String>,
}

impl IntentState {
    /// The status the API shows.
    pub fn status(&self) -> IntentStatus {
        if self.pending.is_some() {
            IntentStatus::Processing
        } else {
            self.settled.unwrap_or(IntentStatus::RequiresAuthorization)
        }
    }

    /// The intent, if the company owns it.
    pub fn owned_by(&self, company: CompanyId) -> Option<&IntentCreated> {
        self.created.as_ref().filter(|c| c.company_id == company.as_uuid())
    }
}

/// What the gateway said about the operation in flight.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The money is held (card pre-authorization, paid PIX code or wallet hold).
    Authorized {
        /// Capturable amount.
        amount_capturable: Money,
        /// Gateway order.
        order_id: Option<String>,
        /// Gateway charge.
        charge_id: Option<String>,
        /// PIX: already collected.
        already_collected: bool,
    },
    /// A PIX code to pay (authorization stays in flight until it is paid).
    PixIssued(PixQrIssued),
    /// Collected (PIX: the part kept; the rest is refunded by the same step).
    Captured {
        /// Amount kept; must equal the amount the capture asked for.
        amount: Money,
        /// Returned to the payer right away (PIX paid more than captured).
        refunded: Money,
    },
    /// The hold was released; everything still capturable is released.
    Voided,
    /// Money went back to the payer for the refund in flight.
    Refunded {
        /// Amount returned; must equal the amount the refund asked for.
        amount: Money,
    },
    /// Failed for good.
    Failed {
        /// Stable code.
        code: String,
        /// For people.
        reason: String,
        /// Acquirer return code.
        decline_code: Option<String>,
    },
    /// Not known yet.
    Unknown {
        /// Why the outcome is unknown (timeout, 5xx, unexpected status), for reconciliation.
        reason: String,
    },
    /// PIX expired.
    Expired,
}

/// Commands of the payment intent.
#[derive(Debug, Clone)]
pub enum IntentCommand {
    /// Create the intent; refused when the stream already holds one.
    Create {
        /// Id of the new intent, also its stream key `payment_intent-<id>`.
        intent_id: Uuid,
        /// Company that will own the intent.
        company_id: CompanyId,
        /// Amount to collect: 1 to 10,000,000 cents, at most two decimal places.
        amount: Money,
        /// How the payer pays; WALLET needs a customer id.
        method: PaymentMethod,
        /// The payer; CPF and e-mail are validated when given.
        customer: Customer,
        /// Free text about the charge, at most 200 characters.
        description: Option<String>,
        /// Wallet to credit when collected.
        top_up_wallet: Option<String>,
        /// Platform clock, recorded as the creation time.
        now: chrono::DateTime<chrono::Utc>,
    },
    /// Ask for a gateway operation (capture/refund amounts: `None` for all).
    Request {
        /// Caller's company; an intent of another company is not found.
        company_id: CompanyId,
        /// Operation to start; refused while another one is in flight.
        operation: Operation,
        /// Capture or refund amount; `None` means all of it. Authorize and void ignore it.
        amount: Option<Money>,
        /// Platform clock, recorded on the requested event.
        now: chrono::DateTime<chrono::Utc>,
    },
    /// Settle the operation in flight.
    Settle {
        /// Caller's company; an intent of another company is not found.
        company_id: CompanyId,
        /// The operation it settles.
        operation: Operation,
        /// What the gateway said; it must fit the operation (`Captured` for a capture).
        outcome: Settlement,
        /// Platform clock, recorded on the settling events.
        now: chrono::DateTime<chrono::Utc>,
    },
    /// Record a gateway exchange.
    RecordExchange {
        /// Caller's company; an intent of another company is not found.
        company_id: CompanyId,
        /// The exchange.
        exchange: GatewayExchanged,
    },
    /// Record a gateway webhook.
    RecordWebhook {
        /// Caller's company; an intent of another company is not found.
        company_id: CompanyId,
        /// The webhook.
        webhook: WebhookReceived,
    },
}

/// The payment intent aggregate.
#[derive(Debug)]
pub struct PaymentIntent;

impl PaymentIntent {
    /// Stream of an intent.
    pub fn stream_id(id: Uuid) -> String {
        format!("{}-{id}", Self::CATEGORY)
    }
}

fn cents(m: i64) -> Money {
    Money::from_cents(m)
}

impl Aggregate for PaymentIntent {
    const CATEGORY: &'static str = "payment_intent";
    type Error = PaymentError;
    type State = IntentState;
    type Command = IntentCommand;
    type Event = PaymentIntentEvent;

    fn decide(state: &IntentState, command: IntentCommand) -> Result<Vec<PaymentIntentEvent>, PaymentError> {
        decide::decide(state, command)
    }

    fn evolve(mut s: IntentState, event: &PaymentIntentEvent) -> IntentState {
        use PaymentIntentEvent as E;
        match event {
            E::Created(c) => {
                s.created = Some(c.clone());
                s.settled = Some(IntentStatus::RequiresAuthorization);
            }
            E::OperationRequested(r) => {
                s.pending = Some(Pending {
                    operation: r.operation,
                    amount: cents(r.amount),
                    idempotency_key: r.idempotency_key.clone(),
                });
                if r.operation == Operation::Refund {
                    s.refunds += 1;
                }
            }
            E::GatewayExchanged(_) | E::OutcomeUnknown(_) => {}
            E::WebhookReceived(w) => {
                s.hooks.insert(w.hook_id.clone());
            }
            E::PixQrIssued(p) => {
                s.order_id = Some(p.order_id.clone());
                s.charge_id = Some(p.charge_id.clone());
                s.pix = Some(p.clone());
            }
            E::Authorized(a) => {
                s.pending = None;
                s.settled = Some(IntentStatus::RequiresCapture);
                s.authorized = cents(a.amount_capturable);
                s.capturable = cents(a.amount_capturable);
                s.order_id = a.order_id.clone().or(s.order_id.take());
                s.charge_id = a.charge_id.clone().or(s.charge_id.take());
                s.already_collected = a.already_collected;
                s.sponsored = a.sponsored;
            }
            E::OperationFailed(f) => {
                let op = f.operation;
                s.pending = None;
                s.failure = Some(f.clone());
                if op == Operation::Authorize {
                    s.settled = Some(IntentStatus::Failed);
                }
            }
            E::Captured(c) => {
                s.pending = None;
                s.settled = Some(IntentStatus::Succeeded);
                s.captured = cents(c.amount_captured);
                s.released = cents(c.amount_released);
                s.capturable = Money::default();
            }
            E::Voided(v) => {
                s.pending = None;
                s.settled = Some(IntentStatus::Canceled);
                s.released = cents(v.amount_released);
                s.capturable = Money::default();
            }
            E::Refunded(r) => {
                if s.pending.as_ref().is_some_and(|p| p.operation == Operation::Refund) {
                    s.pending = None;
                }
                s.refunded = Money::from_decimal(s.refunded.amount() + cents(r.amount).amount());
                if r.at_capture {
                    s.returned_at_capture =
                        Money::from_decimal(s.returned_at_capture.amount() + cents(r.amount).amount());
                }
            }
            E::Expired(_) => {
                s.pending = None;
                s.settled = Some(IntentStatus::Expired);
            }
        }
        s
    }
}
