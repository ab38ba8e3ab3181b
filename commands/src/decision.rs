//! The one command path: every write of the platform goes through [`run`].
//!
//! A decision names the streams it needs ([`Stream`]), possibly of several
//! aggregates. [`run`] loads and folds them, hands them to the caller's
//! synchronous `decide` closure as a [`Decision`] (which decides commands on
//! them with each aggregate's own `decide` and collects the events), then
//! appends every stream that has new events in one transaction, each with its
//! expected version, together with the command's row in `command_log`. When
//! another writer changed one of the streams first, the whole decision is
//! loaded and decided again after a jittered, growing pause. A command id seen
//! before answers with its first outcome and appends nothing.
//!
//! The closure is pure: it may run several times, and only the run that
//! appends counts. Anything it needs from outside (a gateway's answer, the
//! time) is computed before [`run`] and moved into the commands.

use std::{any::Any, time::Duration};

use domain::{Aggregate, DomainError};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    handler::{CommandContext, CommandError},
    store::{CommandRecord, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamWrite},
};

/// How many times a decision is made again after a concurrent change. Every
/// lost race means another writer won, so N writers on one stream all get
/// through within N attempts.
pub const MAX_ATTEMPTS: u32 = 10;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

type Hash = [u8; 32];
type AnyState = Box<dyn Any + Send + Sync>;
type Folder = fn(&[RecordedEvent]) -> Result<AnyState, domain::EventDecodeError>;

/// A write to a table outside the log that must commit with the events (the
/// sealed credentials of an adapter's settings).
pub type SideWrite = Box<
    dyn for<'c> FnOnce(&'c mut sqlx::PgConnection) -> futures::future::BoxFuture<'c, Result<(), StoreError>> + Send,
>;

fn fold<A: Aggregate>(recorded: &[RecordedEvent]) -> Result<AnyState, domain::EventDecodeError>
where
    A::State: 'static,
{
    let mut state = A::State::default();
    for r in recorded {
        state = A::evolve(state, &r.decode::<A::Event>()?);
    }
    Ok(Box::new(state))
}

fn no_state(_: &[RecordedEvent]) -> Result<AnyState, domain::EventDecodeError> {
    Ok(Box::new(()))
}

/// A stream a decision reads (and may append to).
pub struct Stream {
    id: String,
    fold: Folder,
    /// State the caller already holds (the OCPP connection keeps its
    /// charger's), used for the first attempt only; a retry reads the log.
    known: Option<(AnyState, i64, Option<Hash>)>,
    /// The stream must not exist yet.
    new: bool,
    /// Only the stream's last event is read (its version and hash), never
    /// folded: a stream only appended to, such as a charger's frames.
    tip_only: bool,
    /// The stream must be at exactly this version; a conflict there is the
    /// answer, never retried (a charger command's fate is appended once).
    fixed: bool,
    metadata: Option<Metadata>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).field("known", &self.known.is_some()).finish_non_exhaustive()
    }
}

impl Stream {
    /// The stream `id` of aggregate `A`, read from the log.
    pub fn of<A: Aggregate>(id: impl Into<String>) -> Self
    where
        A::State: 'static,
    {
        Self { id: id.into(), fold: fold::<A>, known: None, new: false, tip_only: false, fixed: false, metadata: None }
    }

    /// A stream of `A` that must not exist yet (nothing is read).
    pub fn new<A: Aggregate>(id: impl Into<String>) -> Self
    where
        A::State: 'static,
    {
        Self { new: true, ..Self::of::<A>(id) }
    }

    /// The stream `id` of `A` whose state, version and last hash the caller
    /// holds already: the first attempt reads nothing.
    pub fn known<A: Aggregate>(id: impl Into<String>, state: A::State, version: i64, hash: Option<Hash>) -> Self
    where
        A::State: 'static,
    {
        Self { known: Some((Box::new(state), version, hash)), ..Self::of::<A>(id) }
    }

    /// A stream that is only appended to, never folded (a charger's frames),
    /// whose tip the caller holds.
    /// A retry reads only the stream's last event.
    pub fn tip(id: impl Into<String>, version: i64, hash: Option<Hash>) -> Self {
        Self {
            id: id.into(),
            fold: no_state,
            known: Some((Box::new(()), version, hash)),
            new: false,
            tip_only: true,
            fixed: false,
            metadata: None,
        }
    }

    /// A stream no aggregate folds that must be at exactly `version` (a
    /// charger command's, whose `sent` goes at 1 and its fate at 2): if another
    /// writer got there first, [`run`] answers that conflict instead of
    /// deciding again, so the event is appended at that version or not at all.
    pub fn at(id: impl Into<String>, version: i64) -> Self {
        Self { fixed: true, ..Self::tip(id, version, None) }
    }

    /// A stream no aggregate folds that must not exist yet (a charger
    /// command's): only [`Decision::record`] appends to it.
    pub fn new_record(id: impl Into<String>) -> Self {
        Self { id: id.into(), fold: no_state, known: None, new: true, tip_only: false, fixed: false, metadata: None }
    }

    /// Events appended to this stream carry `metadata` instead of the context's.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// One loaded stream inside a decision.
struct Slot {
    id: String,
    version: i64,
    expected: ExpectedVersion,
    hash: Option<Hash>,
    state: AnyState,
    events: Vec<NewEvent>,
    metadata: Option<Metadata>,
}

/// The streams of one attempt, as the `decide` closure sees them.
pub struct Decision {
    slots: Vec<Slot>,
    side: Vec<SideWrite>,
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.slots.iter().map(|s| (&s.id, s.version, s.events.len()))).finish()
    }
}

impl Decision {
    fn slot(&self, id: &str) -> Result<&Slot, CommandError> {
        self.slots.iter().find(|s| s.id == id).ok_or_else(|| CommandError::Undeclared(id.to_owned()))
    }

    fn slot_mut(&mut self, id: &str) -> Result<&mut Slot, CommandError> {
        self.slots.iter_mut().find(|s| s.id == id).ok_or_else(|| CommandError::Undeclared(id.to_owned()))
    }

    /// The current state of stream `id` (after what this decision decided on it).
    pub fn state<A: Aggregate>(&self, id: &str) -> Result<&A::State, CommandError>
    where
        A::State: 'static,
    {
        self.slot(id)?.state.downcast_ref::<A::State>().ok_or_else(|| CommandError::Undeclared(id.to_owned()))
    }

    /// The version stream `id` had when it was loaded (0: no events yet).
    pub fn loaded_version(&self, id: &str) -> Result<i64, CommandError> {
        Ok(self.slot(id)?.version)
    }

    /// The version stream `id` will have once this decision is appended.
    pub fn version(&self, id: &str) -> Result<i64, CommandError> {
        let slot = self.slot(id)?;
        Ok(slot.version + slot.events.len() as i64)
    }

    /// Decides `command` on stream `id` with `A`'s rules. The events are kept
    /// for the append and folded into the state; a refusal changes nothing
    /// and comes back as the aggregate's own error, for the caller to match.
    pub fn try_decide<A: Aggregate>(
        &mut self,
        id: &str,
        command: A::Command,
    ) -> Result<Result<Vec<A::Event>, A::Error>, CommandError>
    where
        A::State: 'static,
    {
        let slot = self.slot_mut(id)?;
        let state = slot.state.downcast_mut::<A::State>().ok_or_else(|| CommandError::Undeclared(slot.id.clone()))?;
        let events = match A::decide(state, command) {
            Ok(events) => events,
            Err(refusal) => return Ok(Err(refusal)),
        };
        *state = events.iter().fold(std::mem::take(state), A::evolve);
        slot.events.extend(events.iter().map(NewEvent::from_domain));
        Ok(Ok(events))
    }

    /// [`Decision::try_decide`], with a refusal as the decision's error.
    pub fn decide<A: Aggregate>(&mut self, id: &str, command: A::Command) -> Result<Vec<A::Event>, CommandError>
    where
        A::State: 'static,
    {
        self.try_decide::<A>(id, command)?.map_err(|refusal| CommandError::Domain(refusal.into()))
    }

    /// Decides several commands on stream `id` in order; all or nothing.
    pub fn decide_all<A: Aggregate>(
        &mut self,
        id: &str,
        commands: impl IntoIterator<Item = A::Command>,
    ) -> Result<Vec<A::Event>, CommandError>
    where
        A::State: 'static,
    {
        let slot = self.slot(id)?;
        let before = (slot.events.len(), slot.state.downcast_ref::<A::State>().cloned());
        let mut all = Vec::new();
        for command in commands {
            match self.decide::<A>(id, command) {
                Ok(events) => all.extend(events),
                Err(refusal) => {
                    let slot = self.slot_mut(id)?;
                    slot.events.truncate(before.0);
                    if let Some(state) = before.1 {
                        slot.state = Box::new(state);
                    }
                    return Err(refusal);
                }
            }
        }
        Ok(all)
    }

    /// Appends events to stream `id` that no aggregate decides (frames).
    pub fn record<E: domain::DomainEvent>(&mut self, id: &str, events: &[E]) -> Result<(), CommandError> {
        self.slot_mut(id)?.events.extend(events.iter().map(NewEvent::from_domain));
        Ok(())
    }

    /// Appends already built events to stream `id` (the caller needs their
    /// ids before the decision, e.g. as the causation of other events).
    pub fn record_new(&mut self, id: &str, events: impl IntoIterator<Item = NewEvent>) -> Result<(), CommandError> {
        self.slot_mut(id)?.events.extend(events);
        Ok(())
    }

    /// Has `write` run in the append's transaction, after the events.
    pub fn also(&mut self, write: SideWrite) {
        self.side.push(write);
    }

    /// Whether anything would be appended.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.events.is_empty())
    }

    fn writes(&self, metadata: &Metadata) -> Vec<StreamWrite> {
        self.slots
            .iter()
            .filter(|s| !s.events.is_empty())
            .map(|s| StreamWrite {
                stream_id: s.id.clone(),
                expected: s.expected,
                prev_hash: s.hash,
                events: s.events.clone(),
                metadata: s.metadata.clone().unwrap_or_else(|| metadata.clone()),
            })
            .collect()
    }
}

/// What [`run`] did.
#[derive(Debug)]
pub enum Ran<T> {
    /// Decided now: the closure's value, the stored answer and the events
    /// appended (none when the decision was that nothing needs doing).
    Decided {
        /// What the closure returned.
        value: T,
        /// The answer recorded with the command id.
        answer: Value,
        /// What was appended.
        events: Vec<RecordedEvent>,
    },
    /// The command id was executed before: its first answer; nothing appended.
    Replayed(Value),
}

impl<T> Ran<T> {
    /// The answer, fresh or replayed.
    pub fn answer(&self) -> &Value {
        match self {
            Self::Decided { answer, .. } | Self::Replayed(answer) => answer,
        }
    }

    /// The appended events (none on a replay).
    pub fn events(&self) -> &[RecordedEvent] {
        match self {
            Self::Decided { events, .. } => events,
            Self::Replayed(_) => &[],
        }
    }
}

async fn load(store: &EventStore, streams: &mut [Stream]) -> Result<Decision, CommandError> {
    let mut slots = Vec::with_capacity(streams.len());
    for stream in streams.iter_mut() {
        let (state, version, hash) = match stream.known.take() {
            Some(known) => known,
            None if stream.new => ((stream.fold)(&[])?, 0, None),
            None if stream.tip_only => {
                let (version, hash) = store.stream_tip(&stream.id).await?;
                ((stream.fold)(&[])?, version, hash)
            }
            None => {
                let recorded = store.read_stream(&stream.id).await?;
                let version = recorded.last().map_or(0, |r| r.stream_version);
                ((stream.fold)(&recorded)?, version, recorded.last().map(RecordedEvent::hash_array))
            }
        };
        let expected = if stream.new { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        slots.push(Slot {
            id: stream.id.clone(),
            version,
            expected,
            hash,
            state,
            events: vec![],
            metadata: stream.metadata.clone(),
        });
    }
    Ok(Decision { slots, side: vec![] })
}

/// The pause before attempt `attempt` (1-based retries): full jitter over a
/// window that doubles per attempt, so contenders stop colliding.
fn backoff(attempt: u32) -> Duration {
    let window = Duration::from_micros(250u64 << attempt.min(8)).min(MAX_BACKOFF);
    let micros = u64::try_from(window.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(rand::random::<u64>() % micros)
}

/// The command's id: the caller's (Idempotency-Key, OCPP message, a process
/// manager's deterministic id) or a fresh one, so every write is in `command_log`.
fn command_id(ctx: &CommandContext) -> (String, bool) {
    match &ctx.command_id {
        Some(id) => (id.clone(), true),
        None => (Uuid::now_v7().to_string(), false),
    }
}

/// Runs one command: load `streams`, `decide`, append with the command id;
/// again on a concurrent change. `answer` renders what is stored with the
/// command id (and returned to a repeat of it).
pub async fn run<T>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    streams: Vec<Stream>,
    decide: impl FnMut(&mut Decision) -> Result<T, CommandError>,
    answer: impl Fn(&T) -> Value,
) -> Result<Ran<T>, CommandError> {
    run_as(store, ctx, command_type, streams, decide, answer).await
}

/// [`run`] with the caller's error type: a refusal converts into it, and the
/// path's own failures (the log, a mismatched command id) arrive as
/// [`CommandError`] converted into it too.
pub async fn run_as<T, E: From<CommandError>>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    streams: Vec<Stream>,
    decide: impl FnMut(&mut Decision) -> Result<T, E>,
    answer: impl Fn(&T) -> Value,
) -> Result<Ran<T>, E> {
    run_inner(store, ctx, command_type, streams, decide, answer, true).await
}

/// [`run_optimistic_as`] with [`CommandError`].
pub async fn run_optimistic<T>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    streams: Vec<Stream>,
    decide: impl FnMut(&mut Decision) -> Result<T, CommandError>,
    answer: impl Fn(&T) -> Value,
) -> Result<Ran<T>, CommandError> {
    run_inner(store, ctx, command_type, streams, decide, answer, false).await
}

/// [`run_as`] for commands whose ids repeat rarely (a charger's messages,
/// each under its own message id): no look-up in `command_log` before
/// deciding. A repeat is still caught, by the append's unique command id, and
/// answered with the first outcome, so only its cost moves to the rare case.
pub async fn run_optimistic_as<T, E: From<CommandError>>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    streams: Vec<Stream>,
    decide: impl FnMut(&mut Decision) -> Result<T, E>,
    answer: impl Fn(&T) -> Value,
) -> Result<Ran<T>, E> {
    run_inner(store, ctx, command_type, streams, decide, answer, false).await
}

async fn run_inner<T, E: From<CommandError>>(
    store: &EventStore,
    ctx: &CommandContext,
    command_type: &str,
    mut streams: Vec<Stream>,
    mut decide: impl FnMut(&mut Decision) -> Result<T, E>,
    answer: impl Fn(&T) -> Value,
    look_first: bool,
) -> Result<Ran<T>, E> {
    let (id, repeatable) = command_id(ctx);
    if repeatable && look_first {
        if let Some(answer) = replay(store, ctx, &id).await? {
            return Ok(Ran::Replayed(answer));
        }
    }
    let metadata = Metadata { command_id: Some(id.clone()), ..ctx.metadata() };
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
            // What the caller knew is stale now: read every stream from the log
            // (except those that must be at a fixed version).
            for stream in streams.iter_mut().filter(|s| !s.fixed) {
                stream.known = None;
            }
        }
        let mut decision = load(store, &mut streams).await.map_err(E::from)?;
        let value = match decide(&mut decision) {
            Ok(value) => value,
            Err(refusal) => {
                // A concurrent duplicate may have committed since we looked:
                // its outcome, not a refusal of the state it produced, is the answer.
                if repeatable {
                    if let Some(answer) = replay(store, ctx, &id).await? {
                        return Ok(Ran::Replayed(answer));
                    }
                }
                return Err(refusal);
            }
        };
        let stored = answer(&value);
        let writes = decision.writes(&metadata);
        // Nothing to append: only a caller-given id is still recorded, so a
        // repeat (or a concurrent duplicate) gets this answer, not another decision.
        if writes.is_empty() && decision.side.is_empty() && !repeatable {
            return Ok(Ran::Decided { value, answer: stored, events: vec![] });
        }
        let record = CommandRecord {
            company_id: ctx.company_id,
            command_id: id.clone(),
            command_type: command_type.to_owned(),
            request_hash: ctx.request_hash.clone(),
            outcome: stored.clone(),
        };
        let appended = if decision.side.is_empty() {
            store.append(&writes, Some(&record)).await
        } else {
            append_with_side_writes(store, &writes, &record, std::mem::take(&mut decision.side)).await
        };
        match appended {
            Ok(events) => return Ok(Ran::Decided { value, answer: stored, events }),
            Err(conflict @ StoreError::Conflict { .. })
                if streams.iter().any(|s| {
                    s.fixed && matches!(&conflict, StoreError::Conflict { stream_id, .. } if *stream_id == s.id)
                }) =>
            {
                return Err(CommandError::from(conflict).into())
            }
            Err(StoreError::Conflict { .. } | StoreError::OrderConflict { .. } | StoreError::Deadlock { .. }) => {}
            Err(StoreError::DuplicateCommand(_)) if repeatable => {}
            Err(other) => return Err(CommandError::from(other).into()),
        }
        if repeatable {
            if let Some(answer) = replay(store, ctx, &id).await? {
                return Ok(Ran::Replayed(answer));
            }
        }
    }
    Err(CommandError::TooMuchContention(streams.first().map(|s| s.id.clone()).unwrap_or_default()).into())
}

async fn append_with_side_writes(
    store: &EventStore,
    writes: &[StreamWrite],
    record: &CommandRecord,
    side: Vec<SideWrite>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut tx = store.begin().await?;
    tx.record_command(record).await?;
    let mut recorded = Vec::new();
    for write in writes {
        recorded.extend(tx.append(write).await?);
    }
    for write in side {
        write(tx.conn()).await?;
    }
    tx.commit().await?;
    Ok(recorded)
}

async fn replay<E: From<CommandError>>(store: &EventStore, ctx: &CommandContext, id: &str) -> Result<Option<Value>, E> {
    match store.find_command(ctx.company_id, id).await.map_err(CommandError::from)? {
        Some((hash, _)) if hash != ctx.request_hash => Err(CommandError::IdempotencyMismatch(id.to_owned()).into()),
        Some((_, outcome)) => Ok(Some(outcome)),
        None => Ok(None),
    }
}

/// A refusal of the decision as a whole (not of one aggregate's command).
pub fn refuse<T>(error: DomainError) -> Result<T, CommandError> {
    Err(CommandError::Domain(error))
}
