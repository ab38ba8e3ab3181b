//! RFC 9457 problem details for every error the API returns.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use commands::{CommandError, StoreError};
use domain::{DomainError, FieldError, RefusalKind};
use serde::Serialize;
use utoipa::ToSchema;

/// Prefix of every problem `type`; the rest is a stable slug.
pub const PROBLEM_BASE: &str = "urn:chargeledger:problem:";

/// A problem document (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem (`urn:chargeledger:problem:<slug>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time, for a person.
    pub detail: String,
    /// Invalid fields, on validation failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Extension members of particular problems (a declined payment's intent).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field, as the request spelled it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials fine, role not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Not found (or another company's).
    #[error("{0}")]
    NotFound(String),
    /// Malformed request (bad JSON, wrong types).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid fields.
    #[error("request has invalid fields")]
    Validation(Vec<FieldError>),
    /// Conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// Valid fields that the current state or a resource they name refuses
    /// (409 with `errors[]`).
    #[error("request conflicts with the current state")]
    ConflictOn(Vec<FieldError>),
    /// Idempotency key reused with another request.
    #[error("{0}")]
    IdempotencyMismatch(String),
    /// A dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// The charger refused or failed a command.
    #[error("{0}")]
    BadGateway(String),
    /// The charger did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    /// The card was declined; the body carries the failed intent.
    #[error("{detail}")]
    PaymentDeclined {
        /// The problem's `detail`: the failure code and reason (`code: reason`), when known.
        detail: String,
        /// Extension members.
        extensions: serde_json::Map<String, serde_json::Value>,
    },
    /// The route exists, the method does not.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// A bug or an unexpected failure; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed for this role"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "malformed-request", "Malformed request"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation-error", "Invalid request"),
            Self::Conflict(_) | Self::ConflictOn(_) => {
                (StatusCode::CONFLICT, "conflict", "Conflicts with the current state")
            }
            Self::IdempotencyMismatch(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different request",
            ),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "charger-error", "The charger refused or failed"),
            Self::GatewayTimeout(_) => {
                (StatusCode::GATEWAY_TIMEOUT, "charger-timeout", "The charger did not answer in time")
            }
            Self::PaymentDeclined { .. } => {
                (StatusCode::PAYMENT_REQUIRED, "payment-declined", "The payment was declined")
            }
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    /// Wraps an unexpected error, logging its cause.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "the server failed to handle this request; it has been logged".to_owned()
            }
            Self::Validation(fields) => format!("{} field(s) are invalid", fields.len()),
            Self::ConflictOn(fields) => format!("{} field(s) conflict with the current state", fields.len()),
            other => other.to_string(),
        };
        let (errors, extensions) = match self {
            Self::Validation(fields) | Self::ConflictOn(fields) => (
                fields.into_iter().map(|f| ProblemField { field: f.field, message: f.message }).collect(),
                Default::default(),
            ),
            Self::PaymentDeclined { extensions, .. } => (vec![], extensions),
            _ => (vec![], Default::default()),
        };
        let body = Problem {
            problem_type: format!("{PROBLEM_BASE}{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            errors,
            extensions,
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A refusal answers by its kind, whichever aggregate refused: the detail is
/// the refusal's own text, so wording lives once, next to the rule.
impl From<DomainError> for ApiError {
    fn from(value: DomainError) -> Self {
        match value.kind() {
            RefusalKind::Validation(fields) => Self::Validation(fields.to_vec()),
            RefusalKind::ConflictOn(fields) => Self::ConflictOn(fields.to_vec()),
            RefusalKind::NotFound => Self::NotFound(value.to_string()),
            RefusalKind::Conflict | RefusalKind::InsufficientFunds { .. } => Self::Conflict(value.to_string()),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(value: CommandError) -> Self {
        match value {
            CommandError::Domain(e) => e.into(),
            CommandError::IdempotencyMismatch(id) => {
                Self::IdempotencyMismatch(format!("Idempotency-Key {id:?} was already used with a different request"))
            }
            CommandError::TooMuchContention(stream) => Self::Conflict(format!("{stream} is changing too fast; retry")),
            CommandError::Store(StoreError::OrderConflict { stream_id } | StoreError::Deadlock { stream_id }) => {
                Self::Conflict(format!("{stream_id} is changing too fast; retry"))
            }
            CommandError::Store(e @ StoreError::CounterBehind(_)) => {
                tracing::error!(error = %e, "append refused: the transaction counter is behind the log");
                Self::Unavailable("the event log cannot accept writes on this database; see the server log".into())
            }
            other => Self::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(value: sqlx::Error) -> Self {
        Self::internal(value)
    }
}
