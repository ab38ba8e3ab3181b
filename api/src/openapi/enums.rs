//! Schemas of the query filters that take one of a fixed set of names, and
//! of the cursors, built from the lists and patterns the server checks them
//! against, so the document and the check cannot drift apart.

use domain::{infrastructure::AdapterType, payment::IntentStatus, session::SessionStatus, terminal::TerminalStatus};
use utoipa::openapi::{
    schema::{ObjectBuilder, Type},
    Object,
};

/// A string that is one of `names`.
fn one_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)).build()
}

/// `status` of `GET /v1/terminals`.
pub fn terminal_status() -> Object {
    one_of(TerminalStatus::ALL.iter().map(|s| s.as_str()))
}

/// `status` of `GET /v1/payment-intents`.
pub fn intent_status() -> Object {
    one_of(IntentStatus::ALL.iter().map(|s| s.as_str()))
}

/// `status` of `GET /v1/adhoc-charges`.
pub fn session_status() -> Object {
    one_of(SessionStatus::ALL.iter().map(|s| s.as_str()))
}

/// `status` of `GET /api/v1/webhooks`.
pub fn webhook_status() -> Object {
    one_of(crate::routes::webhooks::STATUSES.iter().copied())
}

/// `status` of `GET /v1/charging-infrastructure/connectors`.
pub fn connector_status() -> Object {
    one_of(crate::routes::infrastructure::status::STATUSES.iter().copied())
}

/// `adapterType` filters and paths.
pub fn adapter_type() -> Object {
    one_of(AdapterType::ALL.iter().map(|a| a.as_str()))
}

/// A string of `pattern`.
fn shaped(pattern: &str, description: &str) -> Object {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(description)).build()
}

/// `cursor` of the keyset lists (intents, sessions, webhooks, deliveries, mappings).
pub fn keyset_cursor() -> Object {
    shaped(crate::routes::page::CURSOR_PATTERN, "`nextCursor` of the previous page: `<unix microseconds>.<uuid>`")
}

/// `cursor` of `GET /v1/terminals`.
pub fn terminal_cursor() -> Object {
    shaped(crate::routes::terminals::CURSOR_PATTERN, "`nextCursor` of the previous page: the last terminal id")
}

/// `cursor` of `GET /v1/charging-infrastructure/connectors`.
pub fn connector_cursor() -> Object {
    shaped(
        crate::routes::infrastructure::status::CURSOR_PATTERN,
        "`nextCursor` of the previous page: `<stationId>.<evseId>.<connectorId>.<chargePointId>`",
    )
}
