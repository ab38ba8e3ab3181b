//! Why a wallet refuses a command.

use crate::{
    error::{describe, RefusalKind},
    FieldError,
};

/// A wallet's refusals, one variant each. The balance never goes negative:
/// what would make it so is [`WalletError::InsufficientFunds`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// An amount is not positive, or above what the hold has.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// A hold for an intent that holds already (or for no money at all).
    #[error("this intent already holds money in the wallet")]
    AlreadyHeld,
    /// A capture for an intent that holds nothing.
    #[error("no hold for this intent")]
    NoHold,
    /// Less is available (balance minus holds) than the command needs.
    #[error("insufficient funds: {available} cents available, {asked} asked")]
    InsufficientFunds {
        /// Cents that could still be held or debited.
        available: i64,
        /// Cents the command needed.
        asked: i64,
    },
    /// A reversal of more than was debited for the top-up.
    #[error("{amount} cents cannot be given back: {debited} cents were debited for this top-up")]
    NotDebited {
        /// Cents asked back.
        amount: i64,
        /// Cents debited for the top-up and not reversed.
        debited: i64,
    },
}

impl WalletError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Invalid(fields) => RefusalKind::Validation(fields),
            Self::InsufficientFunds { available, asked } => {
                RefusalKind::InsufficientFunds { available: *available, asked: *asked }
            }
            Self::AlreadyHeld | Self::NoHold | Self::NotDebited { .. } => RefusalKind::Conflict,
        }
    }
}
