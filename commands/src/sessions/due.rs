//! What the session manager's sweep needs to know from the `sessions` read
//! model, as a port (implemented by `projections`): which sessions have work
//! due. The manager re-reads each one's stream before it acts, so a lagging
//! read model delays work and never misdirects it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::CompanyId;
use uuid::Uuid;

pub use crate::read_model::ReadModelError;

/// A session with queued work due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSession {
    /// The session's id.
    pub id: Uuid,
    /// Its company.
    pub company: CompanyId,
    /// When the read model last saw it change.
    pub updated_at: DateTime<Utc>,
}

/// The sweep's question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueQuery {
    /// The clock's now.
    pub now: DateTime<Utc>,
    /// A remote start sent before this is late (the charger did not start).
    pub start_deadline: DateTime<Utc>,
    /// Whether receipts can be sent (without a mailer they wait, and must not
    /// fill the batch).
    pub receipts: bool,
    /// At most this many.
    pub limit: usize,
}

/// The session manager's questions to the `sessions` read model.
#[async_trait]
pub trait SessionQueue: Send + Sync {
    /// Up to `limit` sessions worth a look at `now`, least recently changed
    /// first: a settlement, refund or receipt whose next attempt is due; an
    /// OCPP session authorized but never asked to start (a second after), or
    /// asked before `start_deadline`; a canceled session whose payment is
    /// still held five seconds later.
    async fn due_sessions(&self, query: DueQuery) -> Result<Vec<DueSession>, ReadModelError>;
}
