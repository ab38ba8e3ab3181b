//! Command handlers of charging infrastructure: station-CPMS mappings (with
//! the company registry that keeps one live mapping per station and one per
//! charge point), connectivity-test outcomes, and adapter settings with sealed
//! credentials. The CPMS adapter port is in [`adapter`].

pub mod adapter;
pub mod credentials;

use std::collections::BTreeMap;

use domain::{
    infrastructure::{
        config::{credential_value_ok, ConfigState, ConfigureAdapter, CpmsConfig},
        mapping::{CpmsMapping, MappingCommand, MappingState, RecordTest},
        registry::{CpmsRegistry, RegistryCommand},
        AdapterType,
    },
    CompanyId,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use self::credentials::CredentialCipher;
use crate::{
    decision::{self, Stream},
    handler::{execute, load, CommandContext, CommandError, Executed},
    store::{EventStore, StoreError},
};

/// What a mapping command answers (stored for repeats of its command id): the
/// mapping after the command and its stream version. The HTTP layer renders the
/// read model once it caught up, and this when it has not.
pub fn mapping_outcome(mapping_id: Uuid, state: &MappingState, version: i64) -> Value {
    let (mapping, deleted) = match state {
        MappingState::Live(m) => (Some(m), false),
        MappingState::Deleted(m) => (Some(m), true),
        MappingState::Absent => (None, false),
    };
    json!({
        "id": mapping_id,
        "stationId": mapping.map(|m| m.station_id),
        "adapterType": mapping.map(|m| m.adapter_type.as_str()),
        "chargePointIds": mapping.map(|m| m.charge_point_ids.clone()),
        "deleted": deleted,
        "version": version,
    })
}

/// Creates, updates or deletes a mapping: decides on the mapping, then has the
/// company registry claim (or release) its station and charge points, and
/// appends both streams in one transaction with a version check on each. A
/// concurrent change to either is decided again from the new state.
pub async fn change_mapping(
    store: &EventStore,
    ctx: &CommandContext,
    mapping_id: Uuid,
    command: MappingCommand,
) -> Result<Executed, CommandError> {
    let command_type = match &command {
        MappingCommand::Create(_) => "cpms_mapping.create",
        MappingCommand::Update(_) => "cpms_mapping.update",
        MappingCommand::Delete(_) => "cpms_mapping.delete",
        MappingCommand::RecordTest(_) => return record_test_command(store, ctx, mapping_id, command).await,
    };
    let stream = CpmsMapping::stream_id(mapping_id);
    let registry_stream = CpmsRegistry::stream_id(CompanyId(ctx.company_id));
    let streams = vec![Stream::of::<CpmsMapping>(&stream), Stream::of::<CpmsRegistry>(&registry_stream)];
    let ran = decision::run(
        store,
        ctx,
        command_type,
        streams,
        |d| {
            d.decide::<CpmsMapping>(&stream, command.clone())?;
            let claim = match d.state::<CpmsMapping>(&stream)? {
                MappingState::Live(m) => Some(RegistryCommand::Claim {
                    mapping_id,
                    station_id: m.station_id,
                    charge_point_ids: m.charge_point_ids.clone(),
                    now: m.updated_at,
                }),
                MappingState::Deleted(m) => Some(RegistryCommand::Release { mapping_id, now: m.updated_at }),
                MappingState::Absent => None,
            };
            if let Some(claim) = claim {
                d.decide::<CpmsRegistry>(&registry_stream, claim)?;
            }
            Ok(mapping_outcome(mapping_id, d.state::<CpmsMapping>(&stream)?, d.version(&stream)?))
        },
        Value::clone,
    )
    .await?;
    Ok(ran.into())
}

async fn record_test_command(
    store: &EventStore,
    ctx: &CommandContext,
    mapping_id: Uuid,
    command: MappingCommand,
) -> Result<Executed, CommandError> {
    execute::<CpmsMapping, _>(
        store,
        &CpmsMapping::stream_id(mapping_id),
        ctx,
        "cpms_mapping.record_test",
        command,
        |s, v| mapping_outcome(mapping_id, s, v),
    )
    .await
}

/// Records the outcome of a connectivity test (the mapping must still be live
/// and list the charge points that were tested).
pub async fn record_test(
    store: &EventStore,
    ctx: &CommandContext,
    mapping_id: Uuid,
    test: RecordTest,
) -> Result<Executed, CommandError> {
    record_test_command(store, ctx, mapping_id, MappingCommand::RecordTest(test)).await
}

/// A mapping as the log has it.
pub async fn mapping(store: &EventStore, mapping_id: Uuid) -> Result<MappingState, CommandError> {
    Ok(load::<CpmsMapping>(store, &CpmsMapping::stream_id(mapping_id)).await?.state)
}

/// A company's adapter settings as the log has them.
pub async fn config(store: &EventStore, company: CompanyId) -> Result<ConfigState, CommandError> {
    Ok(load::<CpmsConfig>(store, &CpmsConfig::stream_id(company)).await?.state)
}

/// A change to one adapter's settings; a credential set to `None` is removed.
#[derive(Debug, Clone)]
pub struct ConfigChange {
    /// The adapter.
    pub adapter_type: AdapterType,
    /// New timeout, ms.
    pub timeout_ms: Option<i64>,
    /// New retries.
    pub retries: Option<i64>,
    /// Credentials to set (`Some`) or remove (`None`). `SecretString` never prints its value.
    pub credentials: BTreeMap<String, Option<SecretString>>,
    /// The clock.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The settings of an adapter as callers see them (the shape of `GET …/config`):
/// credential names only.
pub fn config_outcome(state: &ConfigState, adapter: AdapterType) -> Value {
    let settings = state.settings(adapter);
    let credentials: serde_json::Map<String, Value> =
        settings.credentials.iter().map(|n| (n.clone(), Value::String("set".into()))).collect();
    json!({
        "adapterType": adapter.as_str(),
        "timeoutMs": settings.timeout_ms,
        "retries": settings.retries,
        "credentials": credentials,
        "configured": settings.updated_at.is_some(),
        "updatedAt": settings.updated_at,
    })
}

/// Why adapter settings were not changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    /// Refused, or the log failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A credential could not be sealed. Nothing was written.
    #[error(transparent)]
    Credential(#[from] credentials::CredentialError),
}

impl From<StoreError> for ConfigureError {
    fn from(value: StoreError) -> Self {
        Self::Command(value.into())
    }
}

/// Changes an adapter's settings: the event names the credentials, and their
/// sealed values are written to `cpms_credentials` in the same transaction.
pub async fn configure(
    store: &EventStore,
    cipher: &CredentialCipher,
    ctx: &CommandContext,
    change: ConfigChange,
) -> Result<Executed, ConfigureError> {
    use secrecy::ExposeSecret;

    let company = CompanyId(ctx.company_id);
    let adapter = change.adapter_type;
    let mut command = ConfigureAdapter {
        adapter_type: adapter,
        timeout_ms: change.timeout_ms,
        retries: change.retries,
        credentials_set: vec![],
        credentials_removed: vec![],
        rejected_values: vec![],
        now: change.now,
    };
    for (name, value) in &change.credentials {
        match value {
            Some(v) if !credential_value_ok(v.expose_secret()) => command.rejected_values.push(name.clone()),
            Some(_) => command.credentials_set.push(name.clone()),
            None => command.credentials_removed.push(name.clone()),
        }
    }
    let stream = CpmsConfig::stream_id(company);
    let company_id = ctx.company_id;
    let ran = decision::run_as(
        store,
        ctx,
        "cpms_config.configure",
        vec![Stream::of::<CpmsConfig>(&stream)],
        |d| {
            let events = d.decide::<CpmsConfig>(&stream, command.clone())?;
            let version = d.version(&stream)?;
            let mut sealed = Vec::new();
            for event in &events {
                let domain::infrastructure::CpmsConfigEvent::AdapterConfigured(c) = event;
                for name in &c.credentials_set {
                    // Every name set comes from a value of the change.
                    let value = change.credentials.get(name).and_then(Option::as_ref);
                    let value = value.ok_or(credentials::CredentialError::Seal)?;
                    let seal = cipher.seal(company_id, adapter, name, value)?;
                    sealed.push((name.clone(), Some(seal)));
                }
                sealed.extend(c.credentials_removed.iter().map(|n| (n.clone(), None)));
            }
            if !sealed.is_empty() {
                d.also(Box::new(move |conn| {
                    Box::pin(async move {
                        for (name, seal) in &sealed {
                            credentials::write(conn, company_id, adapter, name, seal.as_deref(), version)
                                .await
                                .map_err(StoreError::Database)?;
                        }
                        Ok(())
                    })
                }));
            }
            Ok::<_, ConfigureError>(config_outcome(d.state::<CpmsConfig>(&stream)?, adapter))
        },
        Value::clone,
    )
    .await?;
    Ok(ran.into())
}
