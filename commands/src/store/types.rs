//! The log's types: what is appended, what is read back, and its errors.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{postgres::PgRow, Row};
use uuid::Uuid;

use super::MAX_EVENTS_PER_TRANSACTION;
use crate::hashing::{Hash, ZERO_HASH};

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended to the stream first; reload and decide again.
    #[error("stream {stream_id} was changed concurrently (expected version {expected})")]
    Conflict {
        /// The stream.
        stream_id: String,
        /// The version the writer expected.
        expected: i64,
    },
    /// This command id was already recorded for the company.
    #[error("command {0} was already executed")]
    DuplicateCommand(String),
    /// The stream's last event was committed by a transaction that started
    /// after this one took its id, so this transaction's position would come
    /// before its predecessor's. Nothing was appended; restart the whole
    /// transaction (a new one gets a later id). [`EventStore::append`](super::EventStore::append) does so itself.
    #[error("stream {stream_id} moved on after this transaction began; restart the transaction")]
    OrderConflict {
        /// The stream.
        stream_id: String,
    },
    /// Postgres ended this transaction to break a deadlock with another
    /// appending to the same streams in the opposite order. Nothing was
    /// appended; restart the whole transaction ([`EventStore::append`](super::EventStore::append) does).
    #[error("appending to {stream_id} deadlocked with another transaction; restart the transaction")]
    Deadlock {
        /// The stream.
        stream_id: String,
    },
    /// The position this transaction's id gives is already taken: the
    /// database's transaction counter is behind the log (a restore into
    /// another cluster, ADR 0002). Nothing was appended.
    #[error("the log already holds position {0}: this database's transaction counter is behind the log; see the restore procedure in docs/adr/0002-gap-free-global-order.md")]
    CounterBehind(String),
    /// This transaction declared itself read-only for the log
    /// (`events_read_only_transaction()`, a read-model transaction); nothing
    /// was appended.
    #[error("this transaction declared itself read-only for the log (events_read_only_transaction)")]
    ReadOnlyTransaction,
    /// More events than fit in one transaction.
    #[error("a transaction may append at most {MAX_EVENTS_PER_TRANSACTION} events")]
    TooManyEvents,
    /// Anything the database said.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a writer expects the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist.
    NoStream,
    /// The stream's last version must be exactly this (0 means no stream).
    Exact(i64),
    /// Append at the end, whatever it is (still safe: the unique key catches races).
    Any,
}

/// Who and what caused an event. Stored as JSON on every event.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Owning company (absent only for platform events such as seals).
    pub company_id: Option<Uuid>,
    /// The request or conversation this belongs to.
    pub correlation_id: Uuid,
    /// The event or message that caused this one.
    pub causation_id: Option<Uuid>,
    /// Who: `user:<sub>`, `api-key:<id>`, `charger:<id>`, `system:<role>`.
    pub actor: String,
    /// The command id (Idempotency-Key, OCPP message id).
    pub command_id: Option<String>,
}

impl Metadata {
    /// Metadata of an event the platform itself writes.
    pub fn system(role: &str) -> Self {
        Self {
            company_id: None,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            actor: format!("system:{role}"),
            command_id: None,
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Its id (uuid v7 by default: time-ordered).
    pub event_id: Uuid,
    /// Type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: i32,
    /// The event's JSON body, as the domain event serialized it.
    pub payload: Value,
}

impl NewEvent {
    /// From a domain event.
    pub fn from_domain<E: domain::DomainEvent>(event: &E) -> Self {
        let (event_type, version, payload) = event.to_record();
        Self { event_id: Uuid::now_v7(), event_type: event_type.to_owned(), schema_version: version as i32, payload }
    }
}

/// Events to append to one stream.
#[derive(Debug, Clone)]
pub struct StreamWrite {
    /// Target stream.
    pub stream_id: String,
    /// Concurrency expectation.
    pub expected: ExpectedVersion,
    /// Hash of the event at the expected version, when the caller has it from
    /// loading the stream; otherwise it is read inside the transaction.
    pub prev_hash: Option<Hash>,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// Metadata shared by these events.
    pub metadata: Metadata,
}

/// A command to record with the events, for idempotency.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    /// Owning company.
    pub company_id: Uuid,
    /// The id.
    pub command_id: String,
    /// Kind of command.
    pub command_type: String,
    /// Hash of the request, to tell a replay from a different request with the same id.
    pub request_hash: Vec<u8>,
    /// What to answer when the command is repeated.
    pub outcome: Value,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global position (log order).
    pub position: i64,
    /// Stream id, `<category>-<id>` (`terminal-EVSE-001`, `charge_session-<uuid>`).
    pub stream_id: String,
    /// Version within the stream.
    pub stream_version: i64,
    /// Event id, unique in the log (uuid v7 for events the domain appends).
    pub event_id: Uuid,
    /// Event type name, such as `terminal.registered` or `payment_intent.captured`.
    pub event_type: String,
    /// Schema version.
    pub schema_version: i32,
    /// The event's JSON body at `schema_version` (`decode` upcasts older ones).
    pub payload: Value,
    /// JSON metadata: company, correlation and causation ids, actor, command id.
    pub metadata: Value,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
    /// Hash of the previous event of the stream.
    pub prev_hash: Vec<u8>,
    /// This event's hash.
    pub hash: Vec<u8>,
}

impl RecordedEvent {
    /// The company in the metadata.
    pub fn company_id(&self) -> Option<Uuid> {
        self.metadata.get("companyId").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())
    }

    /// The stream category (`terminal` of `terminal-EVSE-001`).
    pub fn category(&self) -> &str {
        self.stream_id.split_once('-').map_or(self.stream_id.as_str(), |(c, _)| c)
    }

    /// Decodes the payload into a domain event, upcasting old versions.
    pub fn decode<E: domain::DomainEvent>(&self) -> Result<E, domain::EventDecodeError> {
        E::from_record(&self.event_type, self.schema_version as u32, self.payload.clone())
    }

    /// The hash as an array (stored hashes are always 32 bytes, by constraint).
    pub fn hash_array(&self) -> Hash {
        self.hash.as_slice().try_into().unwrap_or(ZERO_HASH)
    }

    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: row.try_get("position")?,
            stream_id: row.try_get("stream_id")?,
            stream_version: row.try_get("stream_version")?,
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            schema_version: row.try_get("schema_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
            recorded_at: row.try_get("recorded_at")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }
}

pub(crate) const EVENT_COLUMNS: &str =
    "position, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, recorded_at, prev_hash, hash";
