//! The `Wallet` aggregate: a customer's digital balance in our own ledger
//! (stream `wallet-<company>:<customerId>`). Holds reserve money for WALLET
//! payment intents; capture debits, release frees. A refund of a top-up debits
//! what it gives back (reversed if the gateway refuses the refund). The balance
//! never goes negative: a hold or debit larger than what is available is
//! refused with [`WalletError::InsufficientFunds`].

mod error;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use error::WalletError;

use crate::{Aggregate, CompanyId, DomainEvent, FieldError};

/// Events of a wallet. Amounts in cents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum WalletEvent {
    /// See [`WalletCredited`].
    #[serde(rename = "wallet.credited")]
    Credited(WalletCredited),
    /// See [`WalletHold`].
    #[serde(rename = "wallet.hold_placed")]
    HoldPlaced(WalletHold),
    /// See [`WalletHold`]: the held amount captured (debited).
    #[serde(rename = "wallet.hold_captured")]
    HoldCaptured(WalletHold),
    /// See [`WalletHold`]: the held amount freed.
    #[serde(rename = "wallet.hold_released")]
    HoldReleased(WalletHold),
    /// See [`WalletDebit`]: money taken out because its top-up is being refunded.
    #[serde(rename = "wallet.debited")]
    Debited(WalletDebit),
    /// See [`WalletDebit`]: a debit given back because the refund it paid for failed.
    #[serde(rename = "wallet.debit_reversed")]
    DebitReversed(WalletDebit),
}

/// Money added (a top-up collected by card or PIX).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletCredited {
    /// Company the wallet belongs to, recorded as its owner.
    #[schemars(description = "Owner.")]
    pub company_id: Uuid,
    /// Our customer id of the wallet's owner (part of the stream id).
    #[schemars(description = "Customer.")]
    pub customer_id: String,
    /// Cents added by the top-up; always positive.
    #[schemars(description = "Cents.")]
    pub amount: i64,
    /// The top-up payment intent that collected it.
    pub source_intent_id: Uuid,
    /// Platform clock when the credit was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A hold, its capture or its release, for one payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletHold {
    /// The payment intent.
    pub intent_id: Uuid,
    /// Cents held, captured or released, as the event type says; always positive.
    #[schemars(description = "Cents.")]
    pub amount: i64,
    /// Platform clock when the hold, capture or release was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A debit of (part of) a top-up's credit, for its refund, or its reversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletDebit {
    /// The top-up payment intent being refunded.
    pub source_intent_id: Uuid,
    /// Cents taken out for the refund, or given back by the reversal; always positive.
    #[schemars(description = "Cents.")]
    pub amount: i64,
    /// Platform clock when the debit or its reversal was recorded.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

impl DomainEvent for WalletEvent {
    const TYPES: &'static [&'static str] = &[
        "wallet.credited",
        "wallet.hold_placed",
        "wallet.hold_captured",
        "wallet.hold_released",
        "wallet.debited",
        "wallet.debit_reversed",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Credited(_) => "wallet.credited",
            Self::HoldPlaced(_) => "wallet.hold_placed",
            Self::HoldCaptured(_) => "wallet.hold_captured",
            Self::HoldReleased(_) => "wallet.hold_released",
            Self::Debited(_) => "wallet.debited",
            Self::DebitReversed(_) => "wallet.debit_reversed",
        }
    }
}

/// Folded wallet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalletState {
    /// Owner, once credited.
    pub company_id: Option<Uuid>,
    /// Balance in cents (held money included).
    pub balance: i64,
    /// Holds by intent.
    pub holds: BTreeMap<Uuid, i64>,
    /// Debits for refunds not reversed, by top-up intent.
    pub debits: BTreeMap<Uuid, i64>,
}

impl WalletState {
    /// What can still be held.
    pub fn available(&self) -> i64 {
        self.balance - self.holds.values().sum::<i64>()
    }
}

/// Commands of a wallet.
#[derive(Debug, Clone)]
pub enum WalletCommand {
    /// Add money.
    Credit {
        /// Company of the wallet, recorded as its owner.
        company_id: CompanyId,
        /// Our customer id of the wallet's owner (part of the stream id).
        customer_id: String,
        /// Cents the top-up collected; must be positive.
        amount: i64,
        /// Top-up intent.
        source_intent_id: Uuid,
        /// Platform clock, recorded on the `wallet.credited` event.
        at: DateTime<Utc>,
    },
    /// Reserve money for an intent.
    Hold {
        /// WALLET payment intent the money is reserved for; one hold per intent.
        intent_id: Uuid,
        /// Cents to reserve; positive and at most what is available (balance minus holds).
        amount: i64,
        /// Platform clock, recorded on the `wallet.hold_placed` event.
        at: DateTime<Utc>,
    },
    /// Debit `amount` of an intent's hold and free the rest.
    Capture {
        /// Intent whose hold is captured; refused when it has none.
        intent_id: Uuid,
        /// Cents to debit, 1 up to the held amount; the rest of the hold is released.
        amount: i64,
        /// Platform clock, recorded on the capture (and release) events.
        at: DateTime<Utc>,
    },
    /// Free an intent's hold.
    Release {
        /// Intent whose hold is freed; nothing happens when it has none.
        intent_id: Uuid,
        /// Platform clock, recorded on the `wallet.hold_released` event.
        at: DateTime<Utc>,
    },
    /// Take out `amount` of a top-up's credit because the top-up is refunded;
    /// refused when less than that is available (spent or held).
    Debit {
        /// The top-up intent.
        source_intent_id: Uuid,
        /// Cents to take out; positive and at most what is available.
        amount: i64,
        /// Platform clock, recorded on the `wallet.debited` event.
        at: DateTime<Utc>,
    },
    /// Give back a debit whose refund failed.
    ReverseDebit {
        /// The top-up intent.
        source_intent_id: Uuid,
        /// Cents to give back, at most what this top-up's debits still hold.
        amount: i64,
        /// Platform clock, recorded on the `wallet.debit_reversed` event.
        at: DateTime<Utc>,
    },
}

/// The wallet aggregate.
#[derive(Debug)]
pub struct Wallet;

impl Wallet {
    /// Stream of a customer's wallet.
    pub fn stream_id(company: CompanyId, customer_id: &str) -> String {
        format!("{}-{company}:{customer_id}", Self::CATEGORY)
    }
}

impl Aggregate for Wallet {
    const CATEGORY: &'static str = "wallet";
    type Error = WalletError;
    type State = WalletState;
    type Command = WalletCommand;
    type Event = WalletEvent;

    fn decide(state: &WalletState, command: WalletCommand) -> Result<Vec<WalletEvent>, WalletError> {
        match command {
            WalletCommand::Credit { company_id, customer_id, amount, source_intent_id, at } => {
                if amount <= 0 {
                    return Err(WalletError::Invalid(FieldError::only("amount", "must be positive")));
                }
                Ok(vec![WalletEvent::Credited(WalletCredited {
                    company_id: company_id.as_uuid(),
                    customer_id,
                    amount,
                    source_intent_id,
                    at,
                })])
            }
            WalletCommand::Hold { intent_id, amount, at } => {
                if amount <= 0 || state.holds.contains_key(&intent_id) {
                    return Err(WalletError::AlreadyHeld);
                }
                if amount > state.available() {
                    return Err(WalletError::InsufficientFunds { available: state.available(), asked: amount });
                }
                Ok(vec![WalletEvent::HoldPlaced(WalletHold { intent_id, amount, at })])
            }
            WalletCommand::Capture { intent_id, amount, at } => {
                let held = *state.holds.get(&intent_id).ok_or(WalletError::NoHold)?;
                if amount <= 0 || amount > held {
                    return Err(WalletError::Invalid(FieldError::only("amount", format!("must be 1 to {held} cents"))));
                }
                let mut events = vec![WalletEvent::HoldCaptured(WalletHold { intent_id, amount, at })];
                if amount < held {
                    events.push(WalletEvent::HoldReleased(WalletHold { intent_id, amount: held - amount, at }));
                }
                Ok(events)
            }
            WalletCommand::Release { intent_id, at } => match state.holds.get(&intent_id) {
                Some(held) => Ok(vec![WalletEvent::HoldReleased(WalletHold { intent_id, amount: *held, at })]),
                None => Ok(vec![]),
            },
            WalletCommand::Debit { source_intent_id, amount, at } => {
                if amount <= 0 {
                    return Err(WalletError::Invalid(FieldError::only("amount", "must be positive")));
                }
                if amount > state.available() {
                    return Err(WalletError::InsufficientFunds { available: state.available(), asked: amount });
                }
                Ok(vec![WalletEvent::Debited(WalletDebit { source_intent_id, amount, at })])
            }
            WalletCommand::ReverseDebit { source_intent_id, amount, at } => {
                let debited = state.debits.get(&source_intent_id).copied().unwrap_or(0);
                if amount <= 0 || amount > debited {
                    return Err(WalletError::NotDebited { amount, debited });
                }
                Ok(vec![WalletEvent::DebitReversed(WalletDebit { source_intent_id, amount, at })])
            }
        }
    }

    fn evolve(mut state: WalletState, event: &WalletEvent) -> WalletState {
        match event {
            WalletEvent::Credited(c) => {
                state.company_id = Some(c.company_id);
                state.balance += c.amount;
            }
            WalletEvent::HoldPlaced(h) => {
                state.holds.insert(h.intent_id, h.amount);
            }
            WalletEvent::HoldCaptured(h) => {
                state.balance -= h.amount;
                if let Some(held) = state.holds.get_mut(&h.intent_id) {
                    *held -= h.amount;
                }
            }
            WalletEvent::HoldReleased(h) => {
                if let Some(held) = state.holds.get_mut(&h.intent_id) {
                    *held -= h.amount;
                }
                state.holds.retain(|_, held| *held > 0);
            }
            WalletEvent::Debited(d) => {
                state.balance -= d.amount;
                *state.debits.entry(d.source_intent_id).or_default() += d.amount;
            }
            WalletEvent::DebitReversed(d) => {
                state.balance += d.amount;
                if let Some(debited) = state.debits.get_mut(&d.source_intent_id) {
                    *debited -= d.amount;
                }
                state.debits.retain(|_, debited| *debited > 0);
            }
        }
        state.holds.retain(|_, held| *held > 0);
        state
    }
}
