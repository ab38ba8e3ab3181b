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
    Aggregate, CompanyId,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use uuid::Uuid;

use self::credentials::CredentialCipher;
use crate::{
    handler::{execute, load, CommandContext, CommandError, Executed, MAX_ATTEMPTS},
    store::{CommandRecord, EventStore, ExpectedVersion, NewEvent, StoreError, StreamWrite},
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

fn metadata_record(ctx: &CommandContext, command_type: &str, outcome: &Value) -> Option<CommandRecord> {
    ctx.command_id.as_ref().map(|id| CommandRecord {
        company_id: ctx.company_id,
        command_id: id.clone(),
        command_type: command_type.to_owned(),
        request_hash: ctx.request_hash.clone(),
        outcome: outcome.clone(),
    })
}

fn metadata(ctx: &CommandContext) -> crate::Metadata {
    crate::Metadata {
        company_id: Some(ctx.company_id),
        correlation_id: ctx.correlation_id,
        causation_id: ctx.causation_id,
        actor: ctx.actor.clone(),
        command_id: ctx.command_id.clone(),
    }
}

/// The stored outcome of an earlier execution of this command id, if any.
async fn replay(store: &EventStore, ctx: &CommandContext) -> Result<Option<Executed>, CommandError> {
    let Some(id) = &ctx.command_id else { return Ok(None) };
    match store.find_command(ctx.company_id, id).await? {
        Some((hash, _)) if hash != ctx.request_hash => Err(CommandError::IdempotencyMismatch(id.clone())),
        Some((_, outcome)) => Ok(Some(Executed { outcome, events: vec![], replayed: true })),
        None => Ok(None),
    }
}

/// A refusal, unless a concurrent duplicate of the command committed first.
async fn refused(store: &EventStore, ctx: &CommandContext, error: CommandError) -> Result<Executed, CommandError> {
    match replay(store, ctx).await? {
        Some(replayed) => Ok(replayed),
        None => Err(error),
    }
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
    if let Some(replayed) = replay(store, ctx).await? {
        return Ok(replayed);
    }
    let stream = CpmsMapping::stream_id(mapping_id);
    let registry_stream = CpmsRegistry::stream_id(CompanyId(ctx.company_id));
    for _ in 0..MAX_ATTEMPTS {
        let mapping = load::<CpmsMapping>(store, &stream).await?;
        let events = match CpmsMapping::decide(&mapping.state, command.clone()) {
            Ok(events) => events,
            Err(refusal) => return refused(store, ctx, refusal.into()).await,
        };
        let version = mapping.version + events.len() as i64;
        let state = events.iter().fold(mapping.state, CpmsMapping::evolve);
        let claim = match &state {
            MappingState::Live(m) => Some(RegistryCommand::Claim {
                mapping_id,
                station_id: m.station_id,
                charge_point_ids: m.charge_point_ids.clone(),
                now: m.updated_at,
            }),
            MappingState::Deleted(m) => Some(RegistryCommand::Release { mapping_id, now: m.updated_at }),
            MappingState::Absent => None,
        };
        let registry = load::<CpmsRegistry>(store, &registry_stream).await?;
        let registry_events = match claim.map(|c| CpmsRegistry::decide(&registry.state, c)).transpose() {
            Ok(events) => events.unwrap_or_default(),
            Err(refusal) => return refused(store, ctx, refusal.into()).await,
        };
        let outcome = mapping_outcome(mapping_id, &state, version);
        let mut writes = vec![StreamWrite {
            stream_id: stream.clone(),
            expected: ExpectedVersion::Exact(mapping.version),
            prev_hash: mapping.last_hash,
            events: events.iter().map(NewEvent::from_domain).collect(),
            metadata: metadata(ctx),
        }];
        if !registry_events.is_empty() {
            writes.push(StreamWrite {
                stream_id: registry_stream.clone(),
                expected: ExpectedVersion::Exact(registry.version),
                prev_hash: registry.last_hash,
                events: registry_events.iter().map(NewEvent::from_domain).collect(),
                metadata: metadata(ctx),
            });
        }
        match store.append(&writes, metadata_record(ctx, command_type, &outcome).as_ref()).await {
            Ok(recorded) => return Ok(Executed { outcome, events: recorded, replayed: false }),
            Err(StoreError::Conflict { .. } | StoreError::DuplicateCommand(_)) => {
                if let Some(replayed) = replay(store, ctx).await? {
                    return Ok(replayed);
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(CommandError::TooMuchContention(stream))
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

    if let Some(replayed) = replay(store, ctx).await? {
        return Ok(replayed);
    }
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
    for _ in 0..MAX_ATTEMPTS {
        let loaded = load::<CpmsConfig>(store, &stream).await?;
        let events = match CpmsConfig::decide(&loaded.state, command.clone()) {
            Ok(events) => events,
            Err(refusal) => return Ok(refused(store, ctx, refusal.into()).await?),
        };
        let version = loaded.version + events.len() as i64;
        let state = events.iter().fold(loaded.state, CpmsConfig::evolve);
        let outcome = config_outcome(&state, adapter);
        let mut sealed = Vec::new();
        for event in &events {
            let domain::infrastructure::CpmsConfigEvent::AdapterConfigured(c) = event;
            for name in &c.credentials_set {
                // Every name set comes from a value of the change.
                let value = change.credentials.get(name).and_then(Option::as_ref);
                let value = value.ok_or(credentials::CredentialError::Seal)?;
                sealed.push((name.clone(), Some(cipher.seal(ctx.company_id, adapter, name, value)?)));
            }
            sealed.extend(c.credentials_removed.iter().map(|n| (n.clone(), None)));
        }
        let write = StreamWrite {
            stream_id: stream.clone(),
            expected: ExpectedVersion::Exact(loaded.version),
            prev_hash: loaded.last_hash,
            events: events.iter().map(NewEvent::from_domain).collect(),
            metadata: metadata(ctx),
        };
        let attempt = async {
            let mut tx = store.begin().await?;
            if let Some(record) = metadata_record(ctx, "cpms_config.configure", &outcome) {
                tx.record_command(&record).await?;
            }
            let recorded = tx.append(&write).await?;
            for (name, seal) in &sealed {
                credentials::write(tx.conn(), ctx.company_id, adapter, name, seal.as_deref(), version).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(recorded)
        };
        match attempt.await {
            Ok(recorded) => return Ok(Executed { outcome, events: recorded, replayed: false }),
            // An order conflict restarts the whole transaction, like a conflict.
            Err(
                StoreError::Conflict { .. }
                | StoreError::OrderConflict { .. }
                | StoreError::Deadlock { .. }
                | StoreError::DuplicateCommand(_),
            ) => {
                if let Some(replayed) = replay(store, ctx).await? {
                    return Ok(replayed);
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(CommandError::TooMuchContention(stream).into())
}
