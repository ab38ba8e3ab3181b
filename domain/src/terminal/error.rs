//! Why a terminal refuses a command.

use crate::{
    error::{describe, RefusalKind},
    FieldError, TerminalId,
};

/// A terminal's refusals, one variant each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TerminalError {
    /// The command's fields are invalid (connectors, texts, credentials).
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// No such terminal, or it belongs to another company (never told apart).
    #[error("terminal not found")]
    NotFound,
    /// The id is registered already, by whichever company: ids are global,
    /// ownership is private, so the refusal is the same for everyone.
    #[error("terminal {0} is already registered")]
    AlreadyRegistered(TerminalId),
}

impl TerminalError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Invalid(fields) => RefusalKind::Validation(fields),
            Self::NotFound => RefusalKind::NotFound,
            Self::AlreadyRegistered(_) => RefusalKind::Conflict,
        }
    }
}
