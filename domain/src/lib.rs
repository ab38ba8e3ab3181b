//! The chargeledger domain: aggregates, their events and commands, and value types.
//!
//! Everything here is pure and synchronous. Aggregates follow the decide/evolve
//! shape: `decide(&State, Command) -> Result<Vec<Event>, Error>` looks at the
//! current state and a command and answers with the events that happened (or
//! the aggregate's own typed refusal, which converts into [`DomainError`]), and `evolve(State, &Event) -> State` folds one event into the
//! state. Anything from the outside world (the clock, a hashed password, a gateway
//! result) arrives inside the command, so these functions are deterministic and are
//! tested as given / when / then without a runtime.

pub mod aggregate;
pub mod charger;
pub mod error;
pub mod event;
pub mod ids;
pub mod infrastructure;
pub mod log;
pub mod money;
pub mod payment;
pub mod schema;
pub mod session;
pub mod terminal;
pub mod wallet;
pub mod webhook;

pub use aggregate::Aggregate;
pub use error::{DomainError, FieldError, RefusalKind};
pub use event::{DomainEvent, EventDecodeError};
pub use ids::{CompanyId, TerminalId};
pub use money::{Energy, Money};
