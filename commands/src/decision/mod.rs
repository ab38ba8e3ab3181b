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

mod execute;

use std::{any::Any, time::Duration};

use domain::{Aggregate, DomainError};
use serde_json::Value;

pub use self::execute::{run, run_as, run_optimistic_as};
use crate::{
    handler::CommandError,
    store::{ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamWrite},
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
    /// The stream must be at exactly this version, on every attempt; a
    /// conflict there is the answer, never retried (a charger command's fate
    /// is appended once).
    fixed: Option<i64>,
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
        Self { id: id.into(), fold: fold::<A>, known: None, new: false, tip_only: false, fixed: None, metadata: None }
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
            fixed: None,
            metadata: None,
        }
    }

    /// A stream no aggregate folds that must be at exactly `version` (a
    /// charger command's: its `sent` only after the request, at 1; its fate
    /// only after `sent`, at 2), on every attempt: when another writer got
    /// there first, [`run`] answers that conflict instead of deciding again,
    /// even if the decision is retried for a conflict on another stream. So
    /// the event is appended right after `version` or not at all.
    pub fn at(id: impl Into<String>, version: i64) -> Self {
        Self { fixed: Some(version), ..Self::tip(id, version, None) }
    }

    /// A stream no aggregate folds that must not exist yet (a charger
    /// command's): only [`Decision::record`] appends to it.
    pub fn new_record(id: impl Into<String>) -> Self {
        Self { id: id.into(), fold: no_state, known: None, new: true, tip_only: false, fixed: None, metadata: None }
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

    /// Takes the current state of stream `id` out of the decision, for a
    /// caller that keeps it (a connection's charger), instead of cloning it.
    /// Later reads of this stream's state in the decision see the default state.
    pub fn take_state<A: Aggregate>(&mut self, id: &str) -> Result<A::State, CommandError>
    where
        A::State: 'static,
    {
        let slot = self.slot_mut(id)?;
        let state = slot.state.downcast_mut::<A::State>().ok_or_else(|| CommandError::Undeclared(slot.id.clone()))?;
        Ok(std::mem::take(state))
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

    /// Moves the decided events out into the append's writes (an attempt's
    /// decision is not used again: a retry loads a new one).
    fn take_writes(&mut self, metadata: &Metadata) -> Vec<StreamWrite> {
        self.slots
            .iter_mut()
            .filter(|s| !s.events.is_empty())
            .map(|s| StreamWrite {
                stream_id: s.id.clone(),
                expected: s.expected,
                prev_hash: s.hash,
                events: std::mem::take(&mut s.events),
                metadata: s.metadata.take().unwrap_or_else(|| metadata.clone()),
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

/// A refusal of the decision as a whole (not of one aggregate's command).
pub fn refuse<T>(error: DomainError) -> Result<T, CommandError> {
    Err(CommandError::Domain(error))
}
