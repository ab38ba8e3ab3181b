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
    /// See [`ChargerCredentialsSet`].
    #[serde(rename = "terminal.charger_credentials_set")]
    CredentialsSet(ChargerCredentialsSet),
}

/// A terminal was registered to a company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalRegistered {
    /// Charge point identity.
    pub terminal_id: TerminalId,
    /// Company the terminal is registered to; other companies' commands get not found.
    #[schemars(description = "Owner.")]
    pub company_id: CompanyId,
    /// Station the terminal belongs to.
    pub station_id: i64,
    /// Manufacturer name, trimmed (`unknown` for an auto-registered charger).
    #[schemars(description = "Manufacturer.")]
    pub vendor: String,
    /// Model name, trimmed (`unknown` for an auto-registered charger).
    #[schemars(description = "Model.")]
    pub model: String,
    /// Protocol version.
    pub ocpp_version: OcppVersion,
    /// Connectors sorted by id (none for an auto-registered charger).
    #[schemars(description = "Connectors.")]
    pub connectors: Vec<Connector>,
    /// Argon2id PHC hash of the OCPP basic-auth password; never the password.
    /// Sensitive: consumers outside the platform receive it redacted.
    // (Not in the frozen v1 schema's text:) `null` means OCPP security profile
    // 0, which an operator must ask for explicitly; a registration for profile
    // 2 is followed by a `terminal.charger_credentials_set` in the same append.
    pub password_hash: Option<String>,
    /// Platform clock when the terminal was registered.
    #[schemars(description = "When.")]
    pub registered_at: DateTime<Utc>,
}

/// The charger's OCPP credentials were set or rotated: from now on the
/// handshake checks this hash (the previous password stops working at once;
/// a charger already connected keeps its connection until it reconnects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// Inlined: a `$defs` entry would change the committed (frozen) schemas of the
// other terminal.* types, which share the enum's `$defs`.
#[schemars(inline)]
pub struct ChargerCredentialsSet {
    /// OCPP security profile: 0 no credentials, 1 HTTP Basic, 2 TLS and HTTP Basic.
    #[schemars(range(max = 2))]
    pub security_profile: u8,
    /// Argon2id PHC hash of the new basic-auth password (`null` for profile 0).
    /// Sensitive: consumers outside the platform receive it redacted.
    pub password_hash: Option<String>,
    /// Platform clock when the credentials were set or rotated.
    #[schemars(description = "When.")]
    pub set_at: DateTime<Utc>,
}

/// The terminal (or someone on its behalf) reported its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminalHealthReported {
    /// Heartbeat, fault or recovery.
    pub kind: HealthKind,
    /// How bad it is: a heartbeat is always `info`; a fault at `error` or above marks the terminal `Faulted`.
    #[schemars(description = "Severity.")]
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
    /// The operator's reason, or the health report's code or message; `None` when none was given.
    #[schemars(description = "Why.")]
    pub reason: Option<String>,
    /// Who changed it.
    pub source: StatusSource,
    /// Platform clock when the status changed.
    #[schemars(description = "When.")]
    pub changed_at: DateTime<Utc>,
}

impl DomainEvent for TerminalEvent {
    const TYPES: &'static [&'static str] = &[
        "terminal.registered",
        "terminal.health_reported",
        "terminal.status_changed",
        "terminal.charger_credentials_set",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Registered(_) => "terminal.registered",
            Self::HealthReported(_) => "terminal.health_reported",
            Self::StatusChanged(_) => "terminal.status_changed",
            Self::CredentialsSet(_) => "terminal.charger_credentials_set",
        }
    }
}
