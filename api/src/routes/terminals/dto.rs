//! Bodies of the Terminals routes, and how a command's result is rendered.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use commands::Executed;
use domain::terminal::{ConnectorType, HealthKind, OcppVersion, Severity};
use projections::terminals::TerminalView;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::routes::Stored;

/// A connector to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorRequest {
    /// OCPP connector id, from 1.
    pub id: u32,
    /// One of Type1, Type2, CCS1, CCS2, CHAdeMO, GB/T, NACS, Domestic.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "CCS2")]
    pub connector_type: ConnectorType,
    /// Maximum power in watts.
    pub max_power_w: u32,
}

/// Registers a terminal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterTerminalRequest {
    /// Charge point identity used in the OCPP URL (`EVSE-001`); unique on the platform.
    #[schema(example = "EVSE-001")]
    pub id: String,
    /// Station the terminal belongs to.
    #[schema(example = 10)]
    pub station_id: i64,
    /// Manufacturer name, 1 to 50 characters.
    pub vendor: String,
    /// Model name, 1 to 50 characters.
    pub model: String,
    /// `1.6` or `2.0.1`.
    #[schema(value_type = String, example = "1.6")]
    pub ocpp_version: OcppVersion,
    /// The charger's connectors: 1 to 32, each id listed once.
    pub connectors: Vec<ConnectorRequest>,
    /// OCPP basic-auth password (16 to 40 characters), stored as an Argon2id hash.
    /// Required unless `securityProfile` is 0.
    pub charger_password: Option<String>,
    /// OCPP security profile: 0 (no credentials: the charger connects without a
    /// password; only when given explicitly), 1 (HTTP Basic, the default with a
    /// password) or 2 (TLS and HTTP Basic).
    #[schema(example = 1)]
    pub security_profile: Option<u8>,
}

/// A health report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthEventRequest {
    /// `heartbeat`, `fault` or `recovery`.
    #[schema(value_type = String, example = "fault")]
    pub kind: HealthKind,
    /// `info`, `warning`, `error` or `critical`; defaults to `error` for faults, else `info`.
    /// A fault of `error` or `critical` marks the terminal Faulted; a recovery makes it Available again.
    #[schema(value_type = Option<String>)]
    pub severity: Option<Severity>,
    /// Vendor or OCPP error code.
    pub code: Option<String>,
    /// Free text.
    pub message: Option<String>,
    /// When it happened at the terminal (RFC 3339); defaults to now.
    pub timestamp: Option<DateTime<Utc>>,
}

/// The recorded health report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthEventResponse {
    /// Id of the terminal the report is about (from the path).
    pub terminal_id: String,
    /// `heartbeat`, `fault` or `recovery`, as sent.
    pub kind: String,
    /// Severity recorded: as sent, else `error` for a fault and `info` otherwise.
    pub severity: String,
    /// Vendor or OCPP error code, as sent.
    pub code: Option<String>,
    /// Free-text message, as sent.
    pub message: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The terminal's status after the report.
    pub terminal_status: String,
    /// Version of the terminal's stream after the report.
    pub version: i64,
}

/// Sets a terminal's status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusRequest {
    /// Available, Unavailable or Faulted (the other statuses are reported by the charger).
    #[schema(example = "Unavailable")]
    pub status: String,
    /// Why (shown to operators).
    pub reason: Option<String>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Only terminals in this status.
    #[param(schema_with = crate::openapi::enums::terminal_status)]
    pub status: Option<String>,
    /// Only terminals of this station.
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    pub station_id: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(schema_with = crate::openapi::enums::terminal_cursor)]
    pub cursor: Option<String>,
}

/// A page of terminals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TerminalPage {
    /// Terminals, ordered by id.
    pub data: Vec<TerminalView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// 2xx with the read model's view, or 202 with the command's outcome when the
/// read model has not caught up yet (the write itself is done).
pub(super) fn answer(
    status: StatusCode,
    location: Option<String>,
    view: Option<TerminalView>,
    executed: Executed,
) -> Stored {
    match view {
        Some(view) => Stored { status, location, body: json!(view) },
        None => Stored { status: StatusCode::ACCEPTED, location, body: executed.outcome },
    }
}

/// The wire name of a serde enum value (`"fault"`, `"error"`).
pub(super) fn enum_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
