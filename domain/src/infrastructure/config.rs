//! The `CpmsConfig` aggregate: a company's settings for each adapter type.
//!
//! Stream: `cpms_config-<company>`. The stream id carries the company, so the
//! caller's company is the owner by construction. An adapter never configured
//! has the defaults of [`AdapterSettings::defaults`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{AdapterConfigured, AdapterType, CpmsConfigEvent};
use crate::{
    error::{describe, RefusalKind, Validator},
    Aggregate, CompanyId, FieldError,
};

/// Accepted request timeouts, ms.
pub const TIMEOUT_MS: std::ops::RangeInclusive<i64> = 100..=120_000;
/// Accepted retry counts.
pub const RETRIES: std::ops::RangeInclusive<i64> = 0..=10;
/// Longest a connectivity test may wait for one charge point, all retries included.
pub const MAX_TEST_MS: i64 = 120_000;
/// Most credentials one adapter may hold.
pub const MAX_CREDENTIALS: usize = 16;
/// Longest credential value, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 4096;

/// A configuration's refusals: settings are either valid or not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Timeout, retries or credentials are invalid.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
}

impl ConfigError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Invalid(fields) => RefusalKind::Validation(fields),
        }
    }
}

/// One adapter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSettings {
    /// Timeout of each request, ms.
    pub timeout_ms: i64,
    /// Retries after a timeout.
    pub retries: i64,
    /// Names of the credentials that have a value.
    pub credentials: BTreeSet<String>,
    /// Last change (`None`: the defaults).
    pub updated_at: Option<DateTime<Utc>>,
}

impl AdapterSettings {
    /// The settings of an adapter nobody configured.
    pub fn defaults(_adapter: AdapterType) -> Self {
        Self { timeout_ms: 10_000, retries: 0, credentials: BTreeSet::new(), updated_at: None }
    }
}

/// Folded state: the configured adapters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigState {
    /// By adapter type.
    pub adapters: BTreeMap<AdapterType, AdapterSettings>,
}

impl ConfigState {
    /// The settings of an adapter (its defaults when never configured).
    pub fn settings(&self, adapter: AdapterType) -> AdapterSettings {
        self.adapters.get(&adapter).cloned().unwrap_or_else(|| AdapterSettings::defaults(adapter))
    }
}

/// Change an adapter's settings. Absent fields keep their value.
#[derive(Debug, Clone)]
pub struct ConfigureAdapter {
    /// The adapter.
    pub adapter_type: AdapterType,
    /// New timeout, ms.
    pub timeout_ms: Option<i64>,
    /// New retries.
    pub retries: Option<i64>,
    /// Credentials given a value (names only: values never enter the domain).
    pub credentials_set: Vec<String>,
    /// Credentials to remove.
    pub credentials_removed: Vec<String>,
    /// Names among `credentials_set` whose value failed [`credential_value_ok`]
    /// (checked by the command side, which holds the values).
    pub rejected_values: Vec<String>,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Whether a credential value may be stored: 1 to 4096 bytes, no control characters.
pub fn credential_value_ok(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_CREDENTIAL_BYTES && !value.chars().any(char::is_control)
}

/// Whether a credential name is acceptable: a letter, then up to 63 of `A-Z a-z 0-9 _ . -`.
pub fn credential_name_ok(name: &str) -> bool {
    name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The config aggregate.
#[derive(Debug)]
pub struct CpmsConfig;

impl CpmsConfig {
    /// Stream id of a company's configuration.
    pub fn stream_id(company: CompanyId) -> String {
        format!("{}-{company}", Self::CATEGORY)
    }
}

impl Aggregate for CpmsConfig {
    const CATEGORY: &'static str = "cpms_config";
    type Error = ConfigError;
    type State = ConfigState;
    type Command = ConfigureAdapter;
    type Event = CpmsConfigEvent;

    fn decide(state: &ConfigState, cmd: ConfigureAdapter) -> Result<Vec<CpmsConfigEvent>, ConfigError> {
        let current = state.settings(cmd.adapter_type);
        let timeout_ms = cmd.timeout_ms.unwrap_or(current.timeout_ms);
        let retries = cmd.retries.unwrap_or(current.retries);
        let mut v = Validator::default();
        v.check(
            TIMEOUT_MS.contains(&timeout_ms),
            "timeoutMs",
            format!("must be between {} and {} ms", TIMEOUT_MS.start(), TIMEOUT_MS.end()),
        );
        v.check(
            RETRIES.contains(&retries),
            "retries",
            format!("must be between {} and {}", RETRIES.start(), RETRIES.end()),
        );
        // A connectivity test waits at most timeout × (retries + 1) per charge
        // point, inside one request: keep that well within a request's life.
        v.check(
            !(TIMEOUT_MS.contains(&timeout_ms) && RETRIES.contains(&retries))
                || timeout_ms.saturating_mul(retries.saturating_add(1)) <= MAX_TEST_MS,
            "timeoutMs",
            format!("timeoutMs × (retries + 1) must be at most {MAX_TEST_MS} ms"),
        );
        for name in cmd.credentials_set.iter().chain(&cmd.credentials_removed) {
            v.check(
                credential_name_ok(name),
                "credentials",
                format!("{name:?} is not a credential name (a letter, then up to 63 of A-Z, a-z, 0-9, '_', '.', '-')"),
            );
        }
        for name in &cmd.rejected_values {
            v.check(
                false,
                format!("credentials.{name}"),
                format!("must be 1 to {MAX_CREDENTIAL_BYTES} bytes without control characters"),
            );
        }
        let removed: Vec<String> =
            cmd.credentials_removed.into_iter().filter(|n| current.credentials.contains(n)).collect();
        let mut after = current.credentials.clone();
        after.extend(cmd.credentials_set.iter().cloned());
        after.retain(|n| !removed.contains(n));
        v.check(after.len() <= MAX_CREDENTIALS, "credentials", format!("at most {MAX_CREDENTIALS} per adapter"));
        v.finish(ConfigError::Invalid)?;
        let unchanged = timeout_ms == current.timeout_ms
            && retries == current.retries
            && cmd.credentials_set.is_empty()
            && removed.is_empty()
            && current.updated_at.is_some();
        if unchanged {
            return Ok(vec![]);
        }
        Ok(vec![CpmsConfigEvent::AdapterConfigured(AdapterConfigured {
            adapter_type: cmd.adapter_type,
            timeout_ms,
            retries,
            credentials_set: cmd.credentials_set,
            credentials_removed: removed,
            configured_at: cmd.now,
        })])
    }

    fn evolve(mut state: ConfigState, event: &CpmsConfigEvent) -> ConfigState {
        let CpmsConfigEvent::AdapterConfigured(c) = event;
        let settings =
            state.adapters.entry(c.adapter_type).or_insert_with(|| AdapterSettings::defaults(c.adapter_type));
        settings.timeout_ms = c.timeout_ms;
        settings.retries = c.retries;
        settings.credentials.extend(c.credentials_set.iter().cloned());
        settings.credentials.retain(|n| !c.credentials_removed.contains(n));
        settings.updated_at = Some(c.configured_at);
        state
    }
}
