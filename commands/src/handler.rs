//! Executing a command against an aggregate: load, decide, append; retry on a
//! concurrent change; answer a repeated command id with its first outcome.

use domain::{Aggregate, DomainError};
use serde_json::Value;
use uuid::Uuid;

use crate::store::{
    CommandRecord, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamWrite,
};

/// How many times a command is decided again after a concurrent change. Every
/// lost race means another writer won, so N concurrent writers on one stream
/// all get through with N attempts.
pub const MAX_ATTEMPTS: usize = 10;

/// Who asks, and under which ids.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The caller's company.
    pub company_id: Uuid,
    /// Idempotency id (Idempotency-Key, OCPP message id); `None` for one-off commands.
    pub command_id: Option<String>,
    /// Hash of the request, to tell a retry from another request reusing the id.
    pub request_hash: Vec<u8>,
    /// Correlation id of the request.
    pub correlation_id: Uuid,
    /// What caused the command, if an event did.
    pub causation_id: Option<Uuid>,
    /// Who (`user:…`, `api-key:…`, `charger:…`).
    pub actor: String,
}

impl CommandContext {
    fn metadata(&self) -> Metadata {
        Metadata {
            company_id: Some(self.company_id),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            actor: self.actor.clone(),
            command_id: self.command_id.clone(),
        }
    }
}

/// Why a command did not execute.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The aggregate refused it. Nothing was appended.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The command id was used before for a different request.
    #[error("command id {0} was already used for a different request")]
    IdempotencyMismatch(String),
    /// Concurrent changes kept winning.
    #[error("gave up after {MAX_ATTEMPTS} concurrent changes to {0}")]
    TooMuchContention(String),
    /// A stored event could not be decoded.
    #[error("stored event is unreadable: {0}")]
    Decode(#[from] domain::EventDecodeError),
    /// The log failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CommandError {
    fn from(value: StoreError) -> Self {
        Self::Store(value)
    }
}

/// The result of a command.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The outcome, as first computed (stored for replays).
    pub outcome: Value,
    /// The events this execution appended (empty on a replay or a no-op).
    pub events: Vec<RecordedEvent>,
    /// Whether this is the stored answer to an earlier execution.
    pub replayed: bool,
}

impl Executed {
    /// Position of the last appended event, to wait for read models.
    pub fn last_position(&self) -> Option<i64> {
        self.events.last().map(|e| e.position)
    }
}

/// The aggregate loaded from its stream.
#[derive(Debug)]
pub struct Loaded<A: Aggregate> {
    /// Folded state.
    pub state: A::State,
    /// Last version (0 if the stream is empty).
    pub version: i64,
    /// Hash of the last event.
    pub last_hash: Option<[u8; 32]>,
}

/// Loads and folds a stream.
pub async fn load<A: Aggregate>(store: &EventStore, stream_id: &str) -> Result<Loaded<A>, CommandError> {
    let recorded = store.read_stream(stream_id).await?;
    let mut state = A::State::default();
    for r in &recorded {
        state = A::evolve(state, &r.decode::<A::Event>()?);
    }
    Ok(Loaded {
        state,
        version: recorded.last().map_or(0, |r| r.stream_version),
        last_hash: recorded.last().map(RecordedEvent::hash_array),
    })
}

/// Executes `command` on the aggregate in `stream_id`. `outcome` renders what
/// the caller is answered from the state after the command; it is stored with
/// the command id so a repeat gets exactly the same answer.
pub async fn execute<A, F>(
    store: &EventStore,
    stream_id: &str,
    ctx: &CommandContext,
    command_type: &str,
    command: A::Command,
    outcome: F,
) -> Result<Executed, CommandError>
where
    A: Aggregate,
    A::Command: Clone,
    F: Fn(&A::State, i64) -> Value,
{
    if let Some(replay) = replay(store, ctx).await? {
        return Ok(replay);
    }
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            // Back off a little, with jitter, so contenders stop colliding.
            let micros = rand::random::<u64>() % (500 * attempt as u64);
            tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
        }
        let loaded = load::<A>(store, stream_id).await?;
        let events = match A::decide(&loaded.state, command.clone()) {
            Ok(events) => events,
            Err(refusal) => {
                // A concurrent duplicate may have committed since we looked:
                // its outcome, not a refusal of the state it produced, is the answer.
                if let Some(replay) = replay(store, ctx).await? {
                    return Ok(replay);
                }
                return Err(refusal.into());
            }
        };
        let version = loaded.version + events.len() as i64;
        let state = events.iter().fold(loaded.state, A::evolve);
        let answer = outcome(&state, version);
        let write = StreamWrite {
            stream_id: stream_id.to_owned(),
            expected: ExpectedVersion::Exact(loaded.version),
            prev_hash: loaded.last_hash,
            events: events.iter().map(NewEvent::from_domain).collect(),
            metadata: ctx.metadata(),
        };
        let record = ctx.command_id.as_ref().map(|id| CommandRecord {
            company_id: ctx.company_id,
            command_id: id.clone(),
            command_type: command_type.to_owned(),
            request_hash: ctx.request_hash.clone(),
            outcome: answer.clone(),
        });
        match store.append(&[write], record.as_ref()).await {
            Ok(recorded) => return Ok(Executed { outcome: answer, events: recorded, replayed: false }),
            Err(StoreError::Conflict { .. }) => {
                if let Some(replay) = replay(store, ctx).await? {
                    return Ok(replay);
                }
            }
            Err(StoreError::DuplicateCommand(_)) => {
                // A concurrent duplicate committed first: answer as it did.
                if let Some(replay) = replay(store, ctx).await? {
                    return Ok(replay);
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(CommandError::TooMuchContention(stream_id.to_owned()))
}

async fn replay(store: &EventStore, ctx: &CommandContext) -> Result<Option<Executed>, CommandError> {
    let Some(id) = &ctx.command_id else {
        return Ok(None);
    };
    match store.find_command(ctx.company_id, id).await? {
        Some((hash, _)) if hash != ctx.request_hash => Err(CommandError::IdempotencyMismatch(id.clone())),
        Some((_, outcome)) => Ok(Some(Executed { outcome, events: vec![], replayed: true })),
        None => Ok(None),
    }
}
