//! The aggregate contract shared by every write model.

use crate::{event::DomainEvent, DomainError};

/// A consistency boundary: one event stream, one state, one set of rules.
///
/// Implementations are pure functions over their own types. The command side
/// loads the stream, folds it with [`Aggregate::evolve`], asks
/// [`Aggregate::decide`] and appends the answer with optimistic concurrency.
pub trait Aggregate {
    /// The stream category, the prefix of every stream id of this aggregate
    /// (`terminal` gives `terminal-EVSE-001`). It also names the Kafka topic.
    const CATEGORY: &'static str;
    /// Folded state; `Default` is the state of a stream with no events.
    type State: Default + Clone + Send + Sync;
    /// What a caller asks for.
    type Command;
    /// What happened.
    type Event: DomainEvent + Clone + Send + Sync;
    /// Why this aggregate refuses a command. Callers match its variants, never
    /// its text; [`DomainError`] is the sum every refusal converts into for
    /// the layers above (HTTP status, problem type).
    type Error: std::error::Error + Into<DomainError> + Clone + Send + Sync + 'static;

    /// Answers a command with the events it causes, or refuses it.
    /// An empty vector means "nothing to do" (the command was already satisfied).
    fn decide(state: &Self::State, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Folds a whole history.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::State::default(), Self::evolve)
    }
}
