//! Domain errors: why a command was refused.

use serde::Serialize;

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
}

/// Why a command was refused. A refused command appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command's fields are invalid.
    #[error("validation failed: {}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// The target does not exist, or belongs to another company (never told apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The target already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The command is valid but not in the target's current state.
    #[error("{0}")]
    InvalidState(String),
    /// A wallet has less available (balance minus holds) than the command needs.
    #[error("insufficient funds: {available} cents available, {asked} asked")]
    InsufficientFunds {
        /// Cents that could still be held or debited.
        available: i64,
        /// Cents the command needed.
        asked: i64,
    },
}

impl DomainError {
    /// A validation error on a single field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
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

    /// `Ok(())` when no check failed.
    pub fn finish(self) -> Result<(), DomainError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.errors))
        }
    }
}
