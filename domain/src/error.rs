//! Domain errors: why a command was refused.
//!
//! Each aggregate refuses with its own enum (`PaymentError`, `WalletError`, …,
//! declared next to the aggregate), one variant per distinct refusal, so callers
//! match variants and never message text. [`DomainError`] is the sum the layers
//! above see: every aggregate error converts into it, and services add the
//! generic refusals they find themselves (a missing field, an unknown id).
//! [`DomainError::kind`] classifies any refusal for a transport (HTTP status,
//! problem type) without the transport knowing each aggregate.

use serde::Serialize;

use crate::{
    charger::ChargerError,
    infrastructure::{config::ConfigError, mapping::MappingError, registry::RegistryError},
    payment::PaymentError,
    session::SessionError,
    terminal::TerminalError,
    wallet::WalletError,
    webhook::{DeliveryError, SubscriptionError},
};

/// One invalid field of a command, named as the caller spelled it (camelCase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer-ish path of the field, such as `connectors[0].maxPowerW`.
    pub field: String,
    /// What is wrong, in words a person understands.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The field errors of a refusal about a single field
    /// (`WalletError::Invalid(FieldError::only("amount", "must be positive"))`).
    pub fn only(field: impl Into<String>, message: impl Into<String>) -> Vec<Self> {
        vec![Self::new(field, message)]
    }
}

/// The text of a validation refusal: `validation failed: a: …; b: …`. Every
/// `Invalid` variant displays through it, so the wording is the same whichever
/// aggregate refused.
pub(crate) fn describe(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
    format!("validation failed: {}", parts.join("; "))
}

/// `conflicts with the current state: field: message; …`
pub(crate) fn describe_conflict(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
    format!("conflicts with the current state: {}", parts.join("; "))
}

/// What kind of refusal an error is, for a transport to pick its answer (HTTP
/// status, problem type) without knowing every aggregate's variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind<'a> {
    /// The command's fields are invalid; these are the fields.
    Validation(&'a [FieldError]),
    /// The target does not exist, or belongs to another company.
    NotFound,
    /// The command is valid but conflicts with the target's current state
    /// (already exists, wrong status, something in progress).
    Conflict,
    /// The command is valid in itself, but the current state or a resource it
    /// names refuses these fields (a card intent authorized without a card
    /// token, a charge point that is not the company's): 409 with the fields.
    ConflictOn(&'a [FieldError]),
    /// A wallet has less available than the command needs.
    InsufficientFunds {
        /// Cents that could still be held or debited.
        available: i64,
        /// Cents the command needed.
        asked: i64,
    },
}

/// Why a command was refused. A refused command appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command's fields are invalid.
    #[error("{}", describe(.0))]
    Validation(Vec<FieldError>),
    /// The fields are valid, but the current state or a resource they name
    /// refuses them (see [`RefusalKind::ConflictOn`]).
    #[error("{}", describe_conflict(.0))]
    Conflicting(Vec<FieldError>),
    /// The target does not exist, or belongs to another company (never told apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The target already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The command is valid but not in the target's current state.
    #[error("{0}")]
    InvalidState(String),
    /// A terminal refused.
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    /// A charger refused.
    #[error(transparent)]
    Charger(#[from] ChargerError),
    /// A payment intent refused.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// A wallet refused.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// A charge session refused.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A CPMS mapping refused.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// A company's CPMS registry refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A company's CPMS configuration refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A webhook subscription refused.
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    /// A webhook delivery refused.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

impl DomainError {
    /// A validation error on a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(FieldError::only(field, message))
    }

    /// What kind of refusal this is, whichever aggregate (or service) refused.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Validation(fields) => RefusalKind::Validation(fields),
            Self::Conflicting(fields) => RefusalKind::ConflictOn(fields),
            Self::NotFound(_) => RefusalKind::NotFound,
            Self::AlreadyExists(_) | Self::InvalidState(_) => RefusalKind::Conflict,
            Self::Terminal(e) => e.kind(),
            Self::Charger(e) => e.kind(),
            Self::Payment(e) => e.kind(),
            Self::Wallet(e) => e.kind(),
            Self::Session(e) => e.kind(),
            Self::Mapping(e) => e.kind(),
            Self::Registry(e) => e.kind(),
            Self::Config(e) => e.kind(),
            Self::Subscription(e) => e.kind(),
            Self::Delivery(e) => e.kind(),
        }
    }
}

/// Collects field errors while validating a command, then fails once with all of them.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Records a failed check.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.errors.push(FieldError::new(field, message));
        }
    }

    /// Records an error unconditionally.
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// The failed checks, in the order they were made.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// `Ok(())` when no check failed; otherwise every failed field, wrapped by
    /// `invalid` into the refusing aggregate's error (`PaymentError::Invalid`).
    pub fn finish<E>(self, invalid: impl FnOnce(Vec<FieldError>) -> E) -> Result<(), E> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(invalid(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aggregate_refusal_is_classified_as_its_generic_counterpart() {
        let fields = vec![FieldError::new("amount", "must be positive")];
        let invalid: DomainError = WalletError::Invalid(fields.clone()).into();
        assert_eq!(invalid.kind(), DomainError::Validation(fields.clone()).kind());
        assert_eq!(invalid.to_string(), DomainError::Validation(fields).to_string());
        let missing: DomainError = PaymentError::NotFound.into();
        assert_eq!((missing.kind(), missing.to_string().as_str()), (RefusalKind::NotFound, "payment intent not found"));
        let short: DomainError = WalletError::InsufficientFunds { available: 5, asked: 7 }.into();
        assert_eq!(short.kind(), RefusalKind::InsufficientFunds { available: 5, asked: 7 });
        assert_eq!(short.to_string(), "insufficient funds: 5 cents available, 7 asked");
        let busy: DomainError = PaymentError::NoOperationInProgress.into();
        assert_eq!((busy.kind(), busy.to_string().as_str()), (RefusalKind::Conflict, "no such operation in progress"));
    }
}
