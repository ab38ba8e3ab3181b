//! Why a payment intent refuses a command.

use super::{IntentStatus, Operation};
use crate::{
    error::{describe, RefusalKind},
    FieldError,
};

/// A payment intent's refusals, one variant each. The texts are what the API
/// shows as the problem `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The command's fields are invalid (amount, CPF, e-mail, …).
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// No such intent, or it belongs to another company.
    #[error("payment intent not found")]
    NotFound,
    /// `Create` on an intent that exists.
    #[error("payment intent already exists")]
    AlreadyExists,
    /// Another gateway operation is in flight; a second one would race it.
    #[error("{} is in progress; try again when it settles", with_article(*.operation))]
    OperationInProgress {
        /// The operation in flight.
        operation: Operation,
    },
    /// The intent's status does not allow the operation.
    #[error("cannot {} a payment intent that is {}", verb(*.operation), .status.as_str())]
    WrongStatus {
        /// What was asked.
        operation: Operation,
        /// Where the intent stands.
        status: IntentStatus,
    },
    /// A settlement for an operation that is not the one in flight (settled
    /// already, by the reconciler or a webhook, or never requested).
    #[error("no such operation in progress")]
    NoOperationInProgress,
    /// A service found no operation of this kind in flight to settle.
    #[error("no {} in progress", verb(*.0))]
    NotInProgress(Operation),
    /// The gateway authorized nothing, or more than was requested.
    #[error("authorized amount outside the intent's amount")]
    AuthorizedAmountOutOfRange,
    /// The gateway captured other amounts than the capture asked.
    #[error("captured amounts do not match the request")]
    CaptureMismatch,
    /// The gateway refunded another amount than the refund asked.
    #[error("refunded amount does not match the request")]
    RefundMismatch,
    /// The outcome belongs to another kind of operation.
    #[error("that outcome does not settle this operation")]
    OutcomeMismatch,
}

impl PaymentError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Invalid(fields) => RefusalKind::Validation(fields),
            Self::NotFound => RefusalKind::NotFound,
            _ => RefusalKind::Conflict,
        }
    }
}

fn verb(operation: Operation) -> &'static str {
    match operation {
        Operation::Authorize => "authorize",
        Operation::Capture => "capture",
        Operation::Void => "void",
        Operation::Refund => "refund",
    }
}

fn with_article(operation: Operation) -> &'static str {
    match operation {
        Operation::Authorize => "an authorization",
        Operation::Capture => "a capture",
        Operation::Void => "a void",
        Operation::Refund => "a refund",
    }
}
