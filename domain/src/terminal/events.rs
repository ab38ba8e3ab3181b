//! Events of the terminal aggregate. Each type has a JSON Schema under
//! `schemas/events/` and an example under `schemas/events/examples/`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Connector, HealthKind, OcppVersion, Severity, StatusSource, TerminalStatus};
use crate::{CompanyId, DomainEvent, TerminalId};

/// Everything that can happen to a terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum TerminalEvent {
    /// See [`TerminalRegistered`].
    #[serde(rename = "terminal.registered")]
    Registered(TerminalRegistered),
    /// See [`TerminalHealthReported`].
    #[serde(rename = "terminal.health_reported")]
    HealthReported(TerminalHealthReported),
    /// See [`TerminalStatusChanged`].
    #[serde(rename = "terminal.status_changed")]
    StatusChanged(TerminalStatusChanged),
}

/// A terminal was registered to a company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalRegistered {
    /// Charge point identity.
    pub terminal_id: TerminalId,
    /// Owner.
    pub company_id: CompanyId,
    /// Station the terminal belongs to.
    pub station_id: i64,
    /// Manufacturer.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Protocol version.
    pub ocpp_version: OcppVersion,
    /// Connectors.
    pub connectors: Vec<Connector>,
    /// Argon2id PHC hash of the OCPP basic-auth password; never the password.
    /// Sensitive: consumers outside the platform receive it redacted.
    pub password_hash: Option<String>,
    /// When.
    pub registered_at: DateTime<Utc>,
}

/// The terminal (or someone on its behalf) reported its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalHealthReported {
    /// Heartbeat, fault or recovery.
    pub kind: HealthKind,
    /// Severity.
    pub severity: Severity,
    /// Vendor or OCPP error code.
    pub code: Option<String>,
    /// Free text.
    pub message: Option<String>,
    /// When it happened at the terminal.
    pub occurred_at: DateTime<Utc>,
    /// When we learned of it.
    pub reported_at: DateTime<Utc>,
}

/// The terminal's status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalStatusChanged {
    /// Previous status.
    pub from: TerminalStatus,
    /// New status.
    pub to: TerminalStatus,
    /// Why.
    pub reason: Option<String>,
    /// Who changed it.
    pub source: StatusSource,
    /// When.
    pub changed_at: DateTime<Utc>,
}

impl DomainEvent for TerminalEvent {
    const TYPES: &'static [&'static str] =
        &["terminal.registered", "terminal.health_reported", "terminal.status_changed"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Registered(_) => "terminal.registered",
            Self::HealthReported(_) => "terminal.health_reported",
            Self::StatusChanged(_) => "terminal.status_changed",
        }
    }
}
