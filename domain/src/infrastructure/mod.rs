//! Charging infrastructure: which CPMS adapter reaches each station's charge
//! points, and each company's adapter settings. Three aggregates, all pure:
//!
//! - [`mapping::CpmsMapping`] (`cpms_mapping-<uuid>`): a station mapped to an
//!   adapter type and the CPMS-side ids of its charge points; created, updated,
//!   tested and deleted (a deleted mapping keeps its history).
//! - [`registry::CpmsRegistry`] (`cpms_registry-<company>`): which live mapping
//!   holds each station and charge point of a company. Its events are appended
//!   in the same transaction as the mapping's, so two concurrent creations for
//!   one station cannot both succeed.
//! - [`config::CpmsConfig`] (`cpms_config-<company>`): per adapter timeout,
//!   retries and the names of its credentials (never their values).

pub mod config;
mod events;
pub mod mapping;
pub mod registry;
#[cfg(test)]
mod tests;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use events::{
    AdapterConfigured, ChargePointTest, CpmsConfigEvent, CpmsMappingEvent, CpmsRegistryEvent, KeysClaimed,
    KeysReleased, MappingCreated, MappingDeleted, MappingTested, MappingUpdated, TestOutcome,
};

use crate::DomainError;

/// How chargeledger reaches a station's charge points.
///
/// Events store it as a plain string (their schema does not list the adapters),
/// so adding one (`ocpi`) is not an event schema change; code that does not know
/// a type refuses it when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub enum AdapterType {
    /// Our own OCPP gateway (1.6-J and 2.0.1).
    Ocpp,
}

impl AdapterType {
    /// Every adapter type this build knows.
    pub const ALL: [AdapterType; 1] = [Self::Ocpp];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ocpp => "ocpp",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for AdapterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for AdapterType {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(AdapterType::as_str).collect();
            DomainError::field("adapterType", format!("must be one of {}", known.join(", ")))
        })
    }
}

impl From<AdapterType> for String {
    fn from(value: AdapterType) -> Self {
        value.as_str().to_owned()
    }
}
