//! The Postgres event log: append with optimistic concurrency, read by stream,
//! and read everything in global order without ever skipping an event.

mod append;
mod read;
mod transaction;
mod types;

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;

pub use transaction::LogTransaction;
pub(crate) use types::EVENT_COLUMNS;
pub use types::{CommandRecord, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamWrite};

/// Postgres channel on which appends are announced (after commit, coalesced).
pub const EVENTS_CHANNEL: &str = "chargeledger_events";

/// Most events one transaction may append: the low 16 bits of a position.
pub const MAX_EVENTS_PER_TRANSACTION: usize = 1 << 16;

/// How often [`EventStore::append`] restarts a transaction after an
/// [`StoreError::OrderConflict`] before it gives up.
const ORDER_RESTARTS: u32 = 8;

/// Reads only below this: no transaction that could still add an event below it
/// is in progress (see `events_watermark()` in the first migration).
pub(crate) const WATERMARK: &str = "(SELECT events_watermark())";

/// The event log.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    signals: Arc<Signals>,
}

/// In-process signals about appends.
#[derive(Debug)]
struct Signals {
    /// Commits made by this process (the announcer tells other processes of them).
    local_commits: watch::Sender<u64>,
    /// Any append this process learned of, local or announced by another process.
    wakeups: watch::Sender<u64>,
}

impl Signals {
    fn committed(&self) {
        self.local_commits.send_modify(|n| *n = n.wrapping_add(1));
        self.wakeups.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl EventStore {
    /// A log on this pool.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            signals: Arc::new(Signals { local_commits: watch::Sender::new(0), wakeups: watch::Sender::new(0) }),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Changes whenever this process learns of an append (its own commits and
    /// those other processes announce); a receiver never misses a change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.signals.wakeups.subscribe()
    }

    /// Changes on this process's own commits only (what the announcer relays).
    pub fn subscribe_local_commits(&self) -> watch::Receiver<u64> {
        self.signals.local_commits.subscribe()
    }

    /// Wakes local readers because another process appended.
    pub fn wake_readers(&self) {
        self.signals.wakeups.send_modify(|n| *n = n.wrapping_add(1));
    }
}
