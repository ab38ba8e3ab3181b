//! Command contexts, outcomes and errors, and [`execute`]: one command on one
//! aggregate through the one command path ([`crate::decision`]).

use domain::{Aggregate, DomainError};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    decision::{self, Ran, Stream, MAX_ATTEMPTS},
    store::{EventStore, Metadata, RecordedEvent, StoreError},
};

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
    /// The metadata of the events this context appends.
    pub fn metadata(&self) -> Metadata {
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
    /// A read model the command needed could not answer.
    #[error(transparent)]
    ReadModel(#[from] crate::read_model::ReadModelError),
    /// A decision used a stream it did not declare (or as another aggregate):
    /// a programming error, refused before anything is appended.
    #[error("the decision did not load stream {0} as that aggregate")]
    Undeclared(String),
    /// A company's write came without its company (a programming error,
    /// refused before anything is appended: it would be recorded as nobody's).
    #[error("{0} needs the company it is for")]
    Unscoped(&'static str),
    /// The log accepted a write but answered without the event it appended.
    #[error("the log did not return the appended event of {0}")]
    NothingAppended(&'static str),
}

impl From<StoreError> for CommandError {
    fn from(value: StoreError) -> Self {
        Self::Store(value)
    }
}

/// Each aggregate's own refusal becomes a [`CommandError::Domain`], so `?`
/// works on `A::decide` in a service.
macro_rules! refusals_into_command_error {
    ($($refusal:ty),* $(,)?) => {$(
        impl From<$refusal> for CommandError {
            fn from(refusal: $refusal) -> Self {
                Self::Domain(refusal.into())
            }
        }
    )*};
}

refusals_into_command_error!(
    domain::terminal::TerminalError,
    domain::charger::ChargerError,
    domain::session::SessionError,
    domain::infrastructure::mapping::MappingError,
    domain::infrastructure::registry::RegistryError,
    domain::infrastructure::config::ConfigError,
    domain::webhook::SubscriptionError,
    domain::webhook::DeliveryError,
    domain::payment::PaymentError,
    domain::wallet::WalletError,
);

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

/// Executes `command` on the aggregate in `stream_id` through the one
/// command path ([`crate::decision::run`]). `outcome` renders what the caller
/// is answered from the state after the command; it is stored with the
/// command id so a repeat gets exactly the same answer.
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
    A::State: 'static,
    F: Fn(&A::State, i64) -> Value,
{
    let ran = decision::run(
        store,
        ctx,
        command_type,
        vec![Stream::of::<A>(stream_id)],
        |d| {
            d.decide::<A>(stream_id, command.clone())?;
            Ok(outcome(d.state::<A>(stream_id)?, d.version(stream_id)?))
        },
        Value::clone,
    )
    .await?;
    Ok(Executed::from(ran))
}

impl From<Ran<Value>> for Executed {
    fn from(ran: Ran<Value>) -> Self {
        match ran {
            Ran::Decided { value, events, .. } => Self { outcome: value, events, replayed: false },
            Ran::Replayed(outcome) => Self { outcome, events: vec![], replayed: true },
        }
    }
}
