//! The write side of chargeledger.
//!
//! - [`store`]: the Postgres event log (append-only, optimistic concurrency,
//!   per-stream hash chain, gap-free global reading below the xid watermark);
//! - [`decision`]: the one command path — load the streams a decision needs,
//!   decide, append with expected versions and the command id, retry on conflict;
//! - [`handler`]: command contexts, errors and single-stream [`handler::execute`];
//! - [`seal`] and [`audit`]: Merkle seals over position ranges, and verification;
//! - [`announce`]: cross-process wake-ups after commit;
//! - one module per aggregate with its command handlers ([`terminals`]).

pub mod announce;
pub mod audit;
pub mod clock;
pub mod decision;
pub mod deployment;
pub mod handler;
pub mod hashing;
pub mod infrastructure;
pub mod ocpp_commands;
pub mod payments;
pub mod publication;
pub mod read_model;
pub mod seal;
pub mod sessions;
pub mod store;
pub mod terminals;
pub mod webhooks;

pub use handler::{CommandContext, CommandError, Executed};
pub use store::{EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamWrite};
