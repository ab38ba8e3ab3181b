//! The `ChargeSession` aggregate: a driver charging and paying for the energy
//! actually delivered (stream `charge_session-<id>`).
//!
//! Preauthorize → (remote) start → meter readings → stop → cost = fixed cost +
//! price × kWh, rounded once to cents → capture min(cost, authorized), the rest
//! released → receipt. Queues (settlement, refunds, receipts) keep their
//! attempts here, so a restart loses nothing and an auditor sees every try.

mod error;
mod events;
mod rules;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
pub use error::SessionError;
pub use events::*;
pub use rules::{start_errors, StartFields};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{Aggregate, Money};

/// Where a session stands (the seed's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionStatus {
    /// Waiting for the payment authorization (PIX: for the payment).
    #[default]
    Preauthorizing,
    /// Authorized; waiting for the charger to start.
    Authorized,
    /// Energy is flowing.
    Charging,
    /// Stop asked; waiting for the charger to end the transaction.
    Stopping,
    /// Stopped; capturing the cost.
    Settling,
    /// Paid for what was delivered.
    Completed,
    /// Ended before charging; nothing captured.
    Canceled,
    /// The payment failed.
    Failed,
}

impl SessionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SessionStatus; 8] = [
        Self::Preauthorizing,
        Self::Authorized,
        Self::Charging,
        Self::Stopping,
        Self::Settling,
        Self::Completed,
        Self::Canceled,
        Self::Failed,
    ];

    /// Wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Preauthorizing => "PREAUTHORIZING",
            Self::Authorized => "AUTHORIZED",
            Self::Charging => "CHARGING",
            Self::Stopping => "STOPPING",
            Self::Settling => "SETTLING",
            Self::Completed => "COMPLETED",
            Self::Canceled => "CANCELED",
            Self::Failed => "FAILED",
        }
    }
}

/// Folded session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionState {
    /// The start (None: no such session).
    pub started: Option<SessionStarted>,
    /// Where the session stands; `Preauthorizing` until the payment is authorized.
    pub status: SessionStatus,
    /// Cents held.
    pub authorized: i64,
    /// The remote start command.
    pub remote_start: Option<RemoteStartSent>,
    /// The charger's transaction.
    pub transaction_id: Option<String>,
    /// Energy delivered so far, Wh.
    pub energy_wh: i64,
    /// Cost so far, cents.
    pub cost_cents: i64,
    /// Why a stop was asked.
    pub stop_reason: Option<String>,
    /// The settlement computed at stop.
    pub settlement: Option<Settlement>,
    /// The capture.
    pub settled: Option<Settled>,
    /// Failed settlement attempts.
    pub settlement_attempts: u32,
    /// Cents waiting to be refunded.
    pub refund_pending: i64,
    /// Failed refund attempts of the pending refund.
    pub refund_attempts: u32,
    /// Cents refunded.
    pub refunded: i64,
    /// Refunds gave up.
    pub refund_dead: bool,
    /// The receipt.
    pub receipt: Option<ReceiptSent>,
    /// Failed receipt attempts.
    pub receipt_attempts: u32,
    /// When the next queued attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Commands of a session.
#[derive(Debug, Clone)]
pub enum SessionCommand {
    /// Begin (validated here).
    Start(SessionStarted),
    /// The payment is authorized.
    PaymentAuthorized {
        /// Cents held.
        amount: i64,
        /// Platform clock when the authorization was confirmed.
        at: DateTime<Utc>,
    },
    /// The payment failed.
    PaymentFailed(Reason),
    /// A remote start went out.
    RemoteStartSent(RemoteStartSent),
    /// The charger started.
    ChargingStarted(ChargingStarted),
    /// Energy delivered so far.
    Progress {
        /// Wh delivered since the start.
        energy_wh: i64,
        /// When measured.
        at: DateTime<Utc>,
    },
    /// Stop (driver, or the platform).
    RequestStop(Reason),
    /// The charger ended the transaction.
    ChargingStopped {
        /// Wh delivered in all.
        energy_wh: i64,
        /// When the charger says the transaction stopped (ad-hoc: the caller's time).
        at: DateTime<Utc>,
    },
    /// The capture went through.
    Settled(Settled),
    /// A capture attempt failed.
    SettlementFailed(Attempt),
    /// Give up before charging (start refused or timed out).
    Cancel(Reason),
    /// Money must go back.
    RequestRefund(Amount),
    /// A refund attempt failed (`next_attempt_at` None: dead-letter it).
    RefundFailed(Attempt),
    /// The pending refund went through.
    Refunded {
        /// Platform clock when the payment intent's refund (or void) settled.
        at: DateTime<Utc>,
    },
    /// The receipt went out.
    ReceiptSent(ReceiptSent),
    /// A receipt attempt failed.
    ReceiptFailed(Attempt),
}

/// Cost of `energy_wh` under `tariff`: exact, and in cents rounded once.
pub fn cost(tariff: &Tariff, energy_wh: i64) -> (Decimal, i64) {
    let kwh = Decimal::new(energy_wh, 3);
    let exact = tariff.fixed_connection_cost + tariff.price_per_kwh * kwh;
    (exact, Money::from_decimal(exact).to_cents().unwrap_or(i64::MAX))
}

/// The charge session aggregate.
#[derive(Debug)]
pub struct ChargeSession;

impl ChargeSession {
    /// Stream of a session.
    pub fn stream_id(id: Uuid) -> String {
        format!("{}-{id}", Self::CATEGORY)
    }
}

impl Aggregate for ChargeSession {
    const CATEGORY: &'static str = "charge_session";
    type Error = SessionError;
    type State = SessionState;
    type Command = SessionCommand;
    type Event = SessionEvent;

    fn decide(s: &SessionState, command: SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand as C;
        use SessionEvent as E;
        use SessionStatus as S;
        let started = || s.started.as_ref().ok_or(SessionError::NotFound);
        Ok(match command {
            C::Start(start) => {
                if s.started.is_some() {
                    return Err(SessionError::AlreadyStarted);
                }
                let errors = start_errors(StartFields::from(&start));
                if !errors.is_empty() {
                    return Err(SessionError::Invalid(errors));
                }
                vec![E::Started(start)]
            }
            C::PaymentAuthorized { amount, at } => match s.status {
                S::Preauthorizing => vec![E::PaymentAuthorized(Amount { amount, reason: None, at })],
                _ => vec![],
            },
            C::PaymentFailed(reason) => match s.status {
                S::Preauthorizing => vec![E::PaymentFailed(reason)],
                _ => vec![],
            },
            C::RemoteStartSent(sent) => match (s.status, &s.remote_start) {
                (S::Authorized, None) => vec![E::RemoteStartSent(sent)],
                _ => vec![],
            },
            C::ChargingStarted(tx) => match s.status {
                S::Authorized => vec![E::ChargingStarted(tx)],
                _ => vec![], // a repeat, or too late (the session was canceled)
            },
            C::Progress { energy_wh, at } => {
                if !matches!(s.status, S::Charging | S::Stopping) || energy_wh <= s.energy_wh {
                    return Ok(vec![]);
                }
                let (_, cost_cents) = cost(&started()?.tariff, energy_wh);
                let mut events = vec![E::ProgressRecorded(Progress { energy_wh, cost_cents, at })];
                if s.status == S::Charging && cost_cents >= s.authorized {
                    events.push(E::StopRequested(Reason {
                        code: "budget_exhausted".into(),
                        detail: format!("the cost reached the authorized {} cents", s.authorized),
                        at,
                    }));
                }
                events
            }
            C::RequestStop(reason) => match s.status {
                S::Preauthorizing | S::Authorized => vec![E::Canceled(reason)],
                S::Charging => vec![E::StopRequested(reason)],
                _ => vec![], // already stopping or stopped: nothing more to do
            },
            C::ChargingStopped { energy_wh, at } => {
                if !matches!(s.status, S::Charging | S::Stopping) {
                    return Ok(vec![]);
                }
                let energy_wh = energy_wh.max(s.energy_wh);
                let (cost_exact, cost_cents) = cost(&started()?.tariff, energy_wh);
                let capture = cost_cents.min(s.authorized);
                vec![
                    E::ChargingStopped(Progress { energy_wh, cost_cents, at }),
                    E::SettlementComputed(Settlement {
                        energy_wh,
                        cost_exact,
                        cost_cents,
                        capture_cents: capture,
                        release_cents: s.authorized - capture,
                        at,
                    }),
                ]
            }
            C::Settled(settled) => match s.status {
                S::Settling => vec![E::Settled(settled)],
                _ => vec![],
            },
            C::SettlementFailed(attempt) => match s.status {
                S::Settling => vec![E::SettlementFailed(attempt)],
                _ => vec![],
            },
            C::Cancel(reason) => match s.status {
                S::Preauthorizing | S::Authorized => vec![E::Canceled(reason)],
                _ => vec![],
            },
            C::RequestRefund(amount) => {
                started()?;
                if amount.amount <= 0 || s.refund_pending > 0 {
                    return Ok(vec![]);
                }
                vec![E::RefundRequested(amount)]
            }
            C::RefundFailed(attempt) => {
                if s.refund_pending == 0 {
                    return Ok(vec![]);
                }
                match attempt.next_attempt_at {
                    Some(_) => vec![E::RefundFailed(attempt)],
                    None => vec![E::RefundDeadLettered(attempt)],
                }
            }
            C::Refunded { at } => {
                if s.refund_pending == 0 {
                    return Ok(vec![]);
                }
                vec![E::Refunded(Amount { amount: s.refund_pending, reason: None, at })]
            }
            C::ReceiptSent(receipt) => match (s.status, &s.receipt) {
                (S::Completed, None) => vec![E::ReceiptSent(receipt)],
                _ => vec![],
            },
            C::ReceiptFailed(attempt) => match (s.status, &s.receipt) {
                (S::Completed, None) => vec![E::ReceiptFailed(attempt)],
                _ => vec![],
            },
        })
    }

    fn evolve(mut s: SessionState, event: &SessionEvent) -> SessionState {
        use SessionEvent as E;
        use SessionStatus as S;
        match event {
            E::Started(st) => s.started = Some(st.clone()),
            E::PaymentAuthorized(a) => {
                s.status = S::Authorized;
                s.authorized = a.amount;
            }
            E::PaymentFailed(_) => s.status = S::Failed,
            E::RemoteStartSent(r) => s.remote_start = Some(r.clone()),
            E::ChargingStarted(c) => {
                s.status = S::Charging;
                s.transaction_id = Some(c.transaction_id.clone());
            }
            E::ProgressRecorded(p) => {
                s.energy_wh = p.energy_wh;
                s.cost_cents = p.cost_cents;
            }
            E::StopRequested(r) => {
                s.status = S::Stopping;
                s.stop_reason = Some(r.code.clone());
            }
            E::ChargingStopped(p) => {
                s.energy_wh = p.energy_wh;
                s.cost_cents = p.cost_cents;
            }
            E::SettlementComputed(st) => {
                s.status = S::Settling;
                s.settlement = Some(st.clone());
                s.next_attempt_at = None;
            }
            E::Settled(st) => {
                s.status = S::Completed;
                s.settled = Some(st.clone());
                s.next_attempt_at = None;
            }
            E::SettlementFailed(a) => {
                s.settlement_attempts = a.attempt;
                s.next_attempt_at = a.next_attempt_at;
            }
            E::Canceled(r) => {
                s.status = S::Canceled;
                s.stop_reason = Some(r.code.clone());
            }
            E::RefundRequested(a) => {
                s.refund_pending = a.amount;
                s.refund_attempts = 0;
            }
            E::RefundFailed(a) => {
                s.refund_attempts = a.attempt;
                s.next_attempt_at = a.next_attempt_at;
            }
            E::Refunded(a) => {
                s.refunded += a.amount;
                s.refund_pending = 0;
                s.next_attempt_at = None;
            }
            E::RefundDeadLettered(a) => {
                s.refund_attempts = a.attempt;
                s.refund_dead = true;
                s.refund_pending = 0;
                s.next_attempt_at = None;
            }
            E::ReceiptSent(r) => {
                s.receipt = Some(r.clone());
                s.next_attempt_at = None;
            }
            E::ReceiptFailed(a) => {
                s.receipt_attempts = a.attempt;
                s.next_attempt_at = a.next_attempt_at;
            }
        }
        s
    }
}
