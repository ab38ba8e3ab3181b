//! Why a charge session refuses a command.

use super::SessionStatus;
use crate::{
    error::{describe, RefusalKind},
    FieldError,
};

/// A charge session's refusals, one variant each. Most session commands are
/// idempotent (a repeat or a late report changes nothing) rather than refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The start's fields are invalid (amount, e-mail, CPF, tariff).
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// No such session, or it belongs to another company.
    #[error("charge session not found")]
    NotFound,
    /// `Start` on a session that has started.
    #[error("charge session already started")]
    AlreadyStarted,
    /// An OCPP session was asked of a charger that is connected to no gateway:
    /// refused before any money moves.
    #[error("{charge_point_id} is offline: nothing was authorized")]
    ChargerOffline {
        /// The charger.
        charge_point_id: String,
    },
    /// The session's status does not allow what a service was asked (ad-hoc
    /// progress or completion of a session that is not charging).
    #[error("the session is {}", .status.as_str())]
    NotInState {
        /// Where the session stands.
        status: SessionStatus,
    },
}

impl SessionError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Invalid(fields) => RefusalKind::Validation(fields),
            Self::NotFound => RefusalKind::NotFound,
            Self::AlreadyStarted | Self::ChargerOffline { .. } | Self::NotInState { .. } => RefusalKind::Conflict,
        }
    }
}
