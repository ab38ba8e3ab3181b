//! Events of the charging-infrastructure aggregates. Each type has a JSON Schema
//! under `schemas/events/` and an example under `schemas/events/examples/`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AdapterType;
use crate::{CompanyId, DomainEvent};

/// Everything that can happen to a station-CPMS mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum CpmsMappingEvent {
    /// See [`MappingCreated`].
    #[serde(rename = "cpms_mapping.created")]
    Created(MappingCreated),
    /// See [`MappingUpdated`].
    #[serde(rename = "cpms_mapping.updated")]
    Updated(MappingUpdated),
    /// See [`MappingDeleted`].
    #[serde(rename = "cpms_mapping.deleted")]
    Deleted(MappingDeleted),
    /// See [`MappingTested`].
    #[serde(rename = "cpms_mapping.tested")]
    Tested(MappingTested),
}

/// A station was mapped to a CPMS adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingCreated {
    /// The mapping.
    pub mapping_id: Uuid,
    /// Company that created the mapping; commands from any other company get "not found".
    #[schemars(description = "Owner.")]
    pub company_id: CompanyId,
    /// The station.
    pub station_id: i64,
    /// How the station's charge points are reached (`ocpp`: our own OCPP gateway).
    pub adapter_type: AdapterType,
    /// CPMS-side identifiers of the station's charge points (`ocpp`: terminal ids on our gateway).
    pub charge_point_ids: Vec<String>,
    /// Platform clock when the mapping was created.
    #[schemars(description = "When.")]
    pub created_at: DateTime<Utc>,
}

/// A mapping's adapter or charge points changed (the values after the change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingUpdated {
    /// Adapter type after the change.
    pub adapter_type: AdapterType,
    /// Charge point identifiers after the change.
    pub charge_point_ids: Vec<String>,
    /// Platform clock when the change was accepted.
    #[schemars(description = "When.")]
    pub updated_at: DateTime<Utc>,
}

/// A mapping was deleted; its history stays in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingDeleted {
    /// Platform clock when the mapping was deleted.
    #[schemars(description = "When.")]
    pub deleted_at: DateTime<Utc>,
}

/// What a connectivity test found for one charge point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// Connected, and it accepted the request.
    Ok,
    /// Not connected to the adapter (nothing was sent).
    NotConnected,
    /// It answered, and refused.
    Rejected,
    /// No answer within the adapter's timeout (after every retry).
    Timeout,
    /// Anything else (a protocol error, an invalid answer); see the error text.
    Error,
}

impl TestOutcome {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotConnected => "not_connected",
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::Error => "error",
        }
    }
}

/// One charge point's part of a connectivity test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargePointTest {
    /// The charge point.
    pub charge_point_id: String,
    /// Whether it was connected when the test began.
    pub connected: bool,
    /// The outcome.
    pub result: TestOutcome,
    /// What went wrong, in words, when the outcome is not `ok`.
    pub error: Option<String>,
    /// Round trip of the last attempt, in milliseconds, when a request was sent.
    pub latency_ms: Option<i64>,
    /// Requests sent (0 when not connected; more than 1 after retries).
    pub attempts: i64,
}

/// A connectivity test of a mapping ran; `ok` when every charge point answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingTested {
    /// The adapter that ran the test.
    pub adapter_type: AdapterType,
    /// Whether every charge point passed.
    pub ok: bool,
    /// The timeout each request was given, in milliseconds (the company's adapter setting).
    pub timeout_ms: i64,
    /// Retries allowed after a timeout (the company's adapter setting).
    pub retries: i64,
    /// Per charge point, in the mapping's order.
    pub results: Vec<ChargePointTest>,
    /// When the test began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub tested_at: DateTime<Utc>,
}

impl DomainEvent for CpmsMappingEvent {
    const TYPES: &'static [&'static str] =
        &["cpms_mapping.created", "cpms_mapping.updated", "cpms_mapping.deleted", "cpms_mapping.tested"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => "cpms_mapping.created",
            Self::Updated(_) => "cpms_mapping.updated",
            Self::Deleted(_) => "cpms_mapping.deleted",
            Self::Tested(_) => "cpms_mapping.tested",
        }
    }
}

/// Claims on a company's stations and charge points by its live mappings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum CpmsRegistryEvent {
    /// See [`KeysClaimed`].
    #[serde(rename = "cpms_registry.claimed")]
    Claimed(KeysClaimed),
    /// See [`KeysReleased`].
    #[serde(rename = "cpms_registry.released")]
    Released(KeysReleased),
}

/// A live mapping holds a station and charge points (replacing what it held before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeysClaimed {
    /// The mapping holding them.
    pub mapping_id: Uuid,
    /// The station.
    pub station_id: i64,
    /// The charge points.
    pub charge_point_ids: Vec<String>,
    /// Platform clock when the claim was recorded (with the mapping's own event).
    #[schemars(description = "When.")]
    pub claimed_at: DateTime<Utc>,
}

/// A deleted mapping let go of its station and charge points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeysReleased {
    /// The mapping.
    pub mapping_id: Uuid,
    /// Platform clock when the claims were released.
    #[schemars(description = "When.")]
    pub released_at: DateTime<Utc>,
}

impl DomainEvent for CpmsRegistryEvent {
    const TYPES: &'static [&'static str] = &["cpms_registry.claimed", "cpms_registry.released"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Claimed(_) => "cpms_registry.claimed",
            Self::Released(_) => "cpms_registry.released",
        }
    }
}

/// Changes to a company's adapter settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum CpmsConfigEvent {
    /// See [`AdapterConfigured`].
    #[serde(rename = "cpms_config.adapter_configured")]
    AdapterConfigured(AdapterConfigured),
}

/// An adapter's settings changed. Credentials are named, never carried: their
/// values are sealed (AES-256-GCM) in `cpms_credentials`, written in the same
/// transaction, because the log is published to analysts (ADR 0013).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdapterConfigured {
    /// The adapter.
    pub adapter_type: AdapterType,
    /// Timeout of each request to a charge point or CPMS, in milliseconds (after the change).
    pub timeout_ms: i64,
    /// Retries after a timeout (after the change).
    pub retries: i64,
    /// Credentials given a new value.
    pub credentials_set: Vec<String>,
    /// Credentials removed.
    pub credentials_removed: Vec<String>,
    /// Platform clock when the settings changed.
    #[schemars(description = "When.")]
    pub configured_at: DateTime<Utc>,
}

impl DomainEvent for CpmsConfigEvent {
    const TYPES: &'static [&'static str] = &["cpms_config.adapter_configured"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::AdapterConfigured(_) => "cpms_config.adapter_configured",
        }
    }
}
