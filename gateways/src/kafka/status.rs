//! Where and why a relay stopped, in memory and in the log's database.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, PoisonError,
};

use commands::{EventStore, StoreError};

/// A stopped relay: the event it cannot publish and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Global position of the event (the checkpoint is before it).
    pub position: i64,
    /// Its type.
    pub event_type: String,
    /// Why (see [`reason`](super::reason)).
    pub reason: String,
}

impl Stopped {
    /// `event at position P (type T) cannot be published: <reason>`.
    pub fn detail(&self) -> String {
        format!("event at position {} (type {}) cannot be published: {}", self.position, self.event_type, self.reason)
    }
}

/// The relay's state, shared with the health checks of its process.
#[derive(Debug, Default)]
pub struct RelayStatus {
    stopped: Mutex<Option<Stopped>>,
    pub(super) recreations: AtomicU64,
}

impl RelayStatus {
    /// Where and why the relay stopped, if it did.
    pub fn stopped(&self) -> Option<Stopped> {
        self.stopped.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Producers replaced after a fatal error.
    pub fn producer_recreations(&self) -> u64 {
        self.recreations.load(Ordering::Relaxed)
    }

    pub(super) fn set_stopped(&self, stopped: Option<Stopped>) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = stopped;
    }
}

/// The row of `projector_checkpoints` where a stopped relay records the
/// position it stopped at (0 while it runs), for the health checks of every
/// process (the relay may run alone, as `chargeledger relay`).
pub const STOPPED_AT: &str = "kafka_relay__stopped_at";

/// The position a relay stopped at, as recorded in the log's database.
pub async fn stopped_at(store: &EventStore) -> Result<Option<i64>, StoreError> {
    Ok(Some(store.checkpoint(STOPPED_AT).await?).filter(|p| *p > 0))
}

pub(super) async fn record_stopped_at(store: &EventStore, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, position) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET position = $2, updated_at = now()",
    )
    .bind(STOPPED_AT)
    .bind(position)
    .execute(store.pool())
    .await?;
    Ok(())
}
