//! The Postgres event log: append with optimistic concurrency, read by stream,
//! and read everything in global order without ever skipping an event.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{postgres::PgRow, PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use uuid::Uuid;

use crate::hashing::{event_hash, Hash, HashedFields, ZERO_HASH};

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
    /// transaction (a new one gets a later id). [`EventStore::append`] does so itself.
    #[error("stream {stream_id} moved on after this transaction began; restart the transaction")]
    OrderConflict {
        /// The stream.
        stream_id: String,
    },
    /// Postgres ended this transaction to break a deadlock with another
    /// appending to the same streams in the opposite order. Nothing was
    /// appended; restart the whole transaction ([`EventStore::append`] does).
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
    /// Payload.
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
    /// Stream.
    pub stream_id: String,
    /// Version within the stream.
    pub stream_version: i64,
    /// Id.
    pub event_id: Uuid,
    /// Type.
    pub event_type: String,
    /// Schema version.
    pub schema_version: i32,
    /// Payload.
    pub payload: Value,
    /// Metadata.
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

    /// Starts a transaction in which several appends can be made atomically.
    pub async fn begin(&self) -> Result<LogTransaction, StoreError> {
        Ok(LogTransaction { tx: self.pool.begin().await?, next_index: 0, signals: self.signals.clone() })
    }

    /// Appends to one or more streams atomically, with an optional command record.
    ///
    /// One stream whose predecessor hash is known goes out as a single
    /// autocommit statement (one round trip); anything else uses a transaction.
    pub async fn append(
        &self,
        writes: &[StreamWrite],
        command: Option<&CommandRecord>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if let [write] = writes {
            if let Some((last_version, prev_hash)) = known_predecessor(write) {
                if !write.events.is_empty() {
                    // One autocommit statement takes its transaction id after
                    // the predecessor committed, so only a stale predecessor
                    // can refuse it.
                    let Some(recorded) = insert_events(&self.pool, write, last_version, prev_hash, 0, command).await?
                    else {
                        return Err(refusal(&self.pool, write, last_version, prev_hash, false).await?);
                    };
                    self.signals.committed();
                    return Ok(recorded);
                }
            }
        }
        let mut attempt = 1;
        loop {
            match self.append_in_transaction(writes, command).await {
                Err(StoreError::OrderConflict { .. } | StoreError::Deadlock { .. }) if attempt < ORDER_RESTARTS => {
                    attempt += 1
                }
                outcome => return outcome,
            }
        }
    }

    async fn append_in_transaction(
        &self,
        writes: &[StreamWrite],
        command: Option<&CommandRecord>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut tx = self.begin().await?;
        if let Some(command) = command {
            tx.record_command(command).await?;
        }
        let mut recorded = Vec::new();
        for write in writes {
            recorded.extend(tx.append(write).await?);
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Every event of a stream, in version order.
    pub async fn read_stream(&self, stream_id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY stream_version");
        let rows = sqlx::query(&sql).bind(stream_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(RecordedEvent::from_row).collect::<Result<_, _>>()?)
    }

    /// Position of the last event of a stream, if it has any.
    pub async fn stream_head(&self, stream_id: &str) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT position FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1";
        Ok(sqlx::query_scalar(sql).bind(stream_id).fetch_optional(&self.pool).await?)
    }

    /// Version and hash of the last event of a stream (`(0, None)` when it has
    /// none): where the next append to it goes, without reading the stream.
    pub async fn stream_tip(&self, stream_id: &str) -> Result<(i64, Option<[u8; 32]>), StoreError> {
        let sql = "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1";
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sql).bind(stream_id).fetch_optional(&self.pool).await?;
        Ok(row.map_or((0, None), |(version, hash)| (version, hash.as_slice().try_into().ok())))
    }

    /// Up to `limit` events after `after` in global order, only below the
    /// watermark, so that nothing can later appear behind what was returned.
    pub async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 AND position < {WATERMARK} ORDER BY position LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(RecordedEvent::from_row).collect::<Result<_, _>>()?)
    }

    /// Whether committed events exist after `after` that the watermark still holds
    /// back (an older transaction is open): readers then poll briefly instead of
    /// waiting for a notification.
    pub async fn held_back_after(&self, after: i64) -> Result<bool, StoreError> {
        let held: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE position > $1)")
            .bind(after)
            .fetch_one(&self.pool)
            .await?;
        Ok(held)
    }

    /// The last readable position (0 for an empty log).
    pub async fn head_position(&self) -> Result<i64, StoreError> {
        let sql = format!("SELECT COALESCE(MAX(position), 0) FROM events WHERE position < {WATERMARK}");
        Ok(sqlx::query_scalar(&sql).fetch_one(&self.pool).await?)
    }

    /// The position a log reader named `name` has handled (0 before its first
    /// run). Readers outside the projector runtime (the session manager, the
    /// webhook scheduler, the Kafka relay) keep theirs in `projector_checkpoints`.
    pub async fn checkpoint(&self, name: &str) -> Result<i64, StoreError> {
        let position: Option<i64> = sqlx::query_scalar("SELECT position FROM projector_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(position.unwrap_or(0))
    }

    /// Moves reader `name` to `position` (never backwards).
    pub async fn advance_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO projector_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = GREATEST(projector_checkpoints.position, $2), updated_at = now()",
        )
        .bind(name)
        .bind(position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events readable after `after`, counted up to `cap`.
    pub async fn count_after(&self, after: i64, cap: i64) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE position > $1 AND position < {WATERMARK} LIMIT $2) t"
        );
        Ok(sqlx::query_scalar(&sql).bind(after).bind(cap).fetch_one(&self.pool).await?)
    }

    /// The stored outcome of a command, with its request hash.
    pub async fn find_command(
        &self,
        company_id: Uuid,
        command_id: &str,
    ) -> Result<Option<(Vec<u8>, Value)>, StoreError> {
        let row =
            sqlx::query("SELECT request_hash, outcome FROM command_log WHERE company_id = $1 AND command_id = $2")
                .bind(company_id)
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("request_hash")?, row.try_get("outcome")?)),
            None => None,
        })
    }
}

/// A database transaction that appends to the log. Events appended in it get
/// consecutive positions after the transaction id; nothing is visible until commit.
#[derive(Debug)]
pub struct LogTransaction {
    tx: Transaction<'static, Postgres>,
    next_index: usize,
    signals: Arc<Signals>,
}

impl LogTransaction {
    /// The underlying transaction, for writes that must commit with the events.
    pub fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// Records a command id; fails with [`StoreError::DuplicateCommand`] when it exists.
    pub async fn record_command(&mut self, command: &CommandRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO command_log (company_id, command_id, command_type, request_hash, outcome) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(command.company_id)
        .bind(&command.command_id)
        .bind(&command.command_type)
        .bind(&command.request_hash)
        .bind(&command.outcome)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some("command_log_pkey") => {
                StoreError::DuplicateCommand(command.command_id.clone())
            }
            _ => StoreError::Database(e),
        })?;
        Ok(())
    }

    /// Appends one stream's events with its concurrency check.
    pub async fn append(&mut self, write: &StreamWrite) -> Result<Vec<RecordedEvent>, StoreError> {
        if write.events.is_empty() {
            return Ok(vec![]);
        }
        if self.next_index + write.events.len() > MAX_EVENTS_PER_TRANSACTION {
            return Err(StoreError::TooManyEvents);
        }
        let (last_version, prev_hash) = self.resolve_expected(write).await?;
        let Some(recorded) =
            insert_events(&mut *self.tx, write, last_version, prev_hash, self.next_index, None).await?
        else {
            return Err(self.refusal(write, last_version, prev_hash).await?);
        };
        self.next_index += write.events.len();
        Ok(recorded)
    }

    /// Why the predecessor check refused an append: the predecessor is gone
    /// or different (a plain conflict), or it is there but was committed by a
    /// transaction that took its id after this one (global order would put
    /// this append before it: the whole transaction must restart).
    async fn refusal(
        &mut self,
        write: &StreamWrite,
        last_version: i64,
        prev_hash: Hash,
    ) -> Result<StoreError, StoreError> {
        refusal(&mut *self.tx, write, last_version, prev_hash, true).await
    }

    /// The version to append after and the hash to chain to.
    async fn resolve_expected(&mut self, write: &StreamWrite) -> Result<(i64, Hash), StoreError> {
        if let Some(known) = known_predecessor(write) {
            return Ok(known);
        }
        let exact = match write.expected {
            ExpectedVersion::Exact(v) => Some(v),
            _ => None,
        };
        let row =
            match exact {
                Some(v) => {
                    sqlx::query("SELECT stream_version, hash FROM events WHERE stream_id = $1 AND stream_version = $2")
                        .bind(&write.stream_id)
                        .bind(v)
                        .fetch_optional(&mut *self.tx)
                        .await?
                }
                None => sqlx::query(
                    "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
                )
                .bind(&write.stream_id)
                .fetch_optional(&mut *self.tx)
                .await?,
            };
        match row {
            Some(row) => {
                let hash: Vec<u8> = row.try_get("hash")?;
                Ok((row.try_get("stream_version")?, hash.as_slice().try_into().unwrap_or(ZERO_HASH)))
            }
            None if exact.is_none() => Ok((0, ZERO_HASH)),
            None => Err(StoreError::Conflict { stream_id: write.stream_id.clone(), expected: exact.unwrap_or(0) }),
        }
    }

    /// Commits, then wakes local readers and announces the append to other processes.
    pub async fn commit(self) -> Result<(), StoreError> {
        let appended = self.next_index > 0;
        self.tx.commit().await?;
        if appended {
            self.signals.committed();
        }
        Ok(())
    }

    /// Abandons everything appended in this transaction.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Why the predecessor check refused an append (see [`LogTransaction::append`]).
/// `in_transaction`: whether the append ran in a transaction that may have
/// taken its id before its predecessor committed (else order cannot be why).
async fn refusal<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    write: &StreamWrite,
    last_version: i64,
    prev_hash: Hash,
    in_transaction: bool,
) -> Result<StoreError, StoreError> {
    // Declared read-only for the log (events_read_only_transaction())? And
    // the predecessor's transaction id, and whether it is from the future (at
    // or past this snapshot's xmax: the counter is behind the log).
    let (read_only, xid, future): (bool, Option<i64>, Option<bool>) = sqlx::query_as(
        "SELECT current_setting('chargeledger.events_read_only', true) IS NOT DISTINCT FROM 'on', \
                p.position >> 16, (p.position >> 16) >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint \
         FROM (SELECT 1) AS one \
         LEFT JOIN events p ON p.stream_id = $1 AND p.stream_version = $2 AND p.hash = $3",
    )
    .bind(&write.stream_id)
    .bind(last_version)
    .bind(prev_hash.as_slice())
    .fetch_one(executor)
    .await?;
    if read_only {
        return Ok(StoreError::ReadOnlyTransaction);
    }
    let found = xid.zip(future);
    Ok(match found {
        Some((xid, true)) if last_version > 0 => StoreError::CounterBehind(format!(
            "{} version {last_version} was written by transaction {xid}",
            write.stream_id
        )),
        Some(_) if last_version > 0 && in_transaction => {
            StoreError::OrderConflict { stream_id: write.stream_id.clone() }
        }
        _ => StoreError::Conflict { stream_id: write.stream_id.clone(), expected: last_version },
    })
}

/// The version and hash to append after, when known without asking the database.
fn known_predecessor(write: &StreamWrite) -> Option<(i64, Hash)> {
    match (write.expected, write.prev_hash) {
        (ExpectedVersion::NoStream | ExpectedVersion::Exact(0), _) => Some((0, ZERO_HASH)),
        (ExpectedVersion::Exact(v), Some(hash)) => Some((v, hash)),
        _ => None,
    }
}

/// Inserts one stream's events. The `WHERE` re-checks the predecessor the
/// hash chains to, so a caller that passes a stale version or hash appends
/// nothing (0 rows: a conflict) instead of breaking the chain.
const INSERT_EVENTS: &str = "INSERT INTO events (position, stream_id, stream_version, event_id, event_type, schema_version, \
                                 payload, metadata, recorded_at, prev_hash, hash) \
     SELECT (pg_current_xact_id()::text::bigint << 16) + t.idx, $1, t.version, t.event_id, t.event_type, \
            t.schema_version, t.payload, $2, $3, t.prev_hash, t.hash \
     FROM UNNEST($4::bigint[], $5::bigint[], $6::uuid[], $7::text[], $8::int[], $9::jsonb[], $10::bytea[], $11::bytea[]) \
          AS t(idx, version, event_id, event_type, schema_version, payload, prev_hash, hash) \
     WHERE current_setting('chargeledger.events_read_only', true) IS DISTINCT FROM 'on' \
       AND ($12::bigint = 0 \
        OR EXISTS (SELECT 1 FROM events p WHERE p.stream_id = $1 AND p.stream_version = $12 AND p.hash = $13 \
                   AND p.position < ((pg_current_xact_id()::text::bigint + 1) << 16))) \
     RETURNING position, stream_version";

/// The same, recording the command first: the events are selected from the
/// command insert, so a concurrent duplicate fails on the command key (and is
/// answered with the first outcome) before it can touch the stream. The
/// predecessor check guards the command insert itself: a data-modifying CTE
/// always runs, so checked only on the events it would record the command of
/// an append that did not happen (and a retry would answer with its outcome).
const INSERT_EVENTS_WITH_COMMAND: &str = "WITH command AS ( \
       INSERT INTO command_log (company_id, command_id, command_type, request_hash, outcome) \
       SELECT $14, $15, $16, $17, $18 \
       WHERE current_setting('chargeledger.events_read_only', true) IS DISTINCT FROM 'on' \
         AND ($12::bigint = 0 \
          OR EXISTS (SELECT 1 FROM events p WHERE p.stream_id = $1 AND p.stream_version = $12 AND p.hash = $13 \
                     AND p.position < ((pg_current_xact_id()::text::bigint + 1) << 16))) \
       RETURNING 1 AS recorded) \
     INSERT INTO events (position, stream_id, stream_version, event_id, event_type, schema_version, \
                         payload, metadata, recorded_at, prev_hash, hash) \
     SELECT (pg_current_xact_id()::text::bigint << 16) + t.idx, $1, t.version, t.event_id, t.event_type, \
            t.schema_version, t.payload, $2, $3, t.prev_hash, t.hash \
     FROM command CROSS JOIN \
          UNNEST($4::bigint[], $5::bigint[], $6::uuid[], $7::text[], $8::int[], $9::jsonb[], $10::bytea[], $11::bytea[]) \
          AS t(idx, version, event_id, event_type, schema_version, payload, prev_hash, hash) \
     RETURNING position, stream_version";

fn map_insert_error(
    e: sqlx::Error,
    write: &StreamWrite,
    last_version: i64,
    command: Option<&CommandRecord>,
) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("events_stream_version_key") => {
            StoreError::Conflict { stream_id: write.stream_id.clone(), expected: last_version }
        }
        sqlx::Error::Database(db) if db.constraint() == Some("command_log_pkey") => {
            StoreError::DuplicateCommand(command.map(|c| c.command_id.clone()).unwrap_or_default())
        }
        // Two transactions appending to the same streams in opposite orders:
        // Postgres ended this one; the whole transaction must run again.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("40P01") => {
            StoreError::Deadlock { stream_id: write.stream_id.clone() }
        }
        sqlx::Error::Database(db) if db.constraint() == Some("events_pkey") => {
            StoreError::CounterBehind(db.message().to_owned())
        }
        _ => StoreError::Database(e),
    }
}

/// Hashes and inserts one stream's events in one statement (with the command
/// record, when given). `base_index` is the number of events the transaction
/// already appended: positions inside one transaction must differ. `None` when
/// the predecessor check refused the append (nothing was written).
async fn insert_events<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    write: &StreamWrite,
    last_version: i64,
    prev_hash: Hash,
    base_index: usize,
    command: Option<&CommandRecord>,
) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
    if base_index + write.events.len() > MAX_EVENTS_PER_TRANSACTION {
        return Err(StoreError::TooManyEvents);
    }
    let recorded_at = Utc::now().trunc_subsecs(6);
    let metadata = serde_json::to_value(&write.metadata).unwrap_or(Value::Null);
    let mut recorded = Vec::with_capacity(write.events.len());
    let mut prev = prev_hash;
    for (i, event) in write.events.iter().enumerate() {
        let version = last_version + 1 + i as i64;
        let hash = event_hash(
            &prev,
            &HashedFields {
                stream_id: &write.stream_id,
                stream_version: version,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                metadata: &metadata,
                recorded_at,
            },
        );
        recorded.push(RecordedEvent {
            position: (base_index + i) as i64, // index for now; the database answers with the position
            stream_id: write.stream_id.clone(),
            stream_version: version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: metadata.clone(),
            recorded_at,
            prev_hash: prev.to_vec(),
            hash: hash.to_vec(),
        });
        prev = hash;
    }
    let query = sqlx::query(if command.is_some() { INSERT_EVENTS_WITH_COMMAND } else { INSERT_EVENTS })
        .bind(&write.stream_id)
        .bind(&metadata)
        .bind(recorded_at)
        .bind(recorded.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(recorded.iter().map(|r| r.stream_version).collect::<Vec<_>>())
        .bind(recorded.iter().map(|r| r.event_id).collect::<Vec<_>>())
        .bind(recorded.iter().map(|r| r.event_type.as_str()).collect::<Vec<_>>())
        .bind(recorded.iter().map(|r| r.schema_version).collect::<Vec<_>>())
        .bind(recorded.iter().map(|r| &r.payload).collect::<Vec<_>>())
        .bind(recorded.iter().map(|r| r.prev_hash.as_slice()).collect::<Vec<_>>())
        .bind(recorded.iter().map(|r| r.hash.as_slice()).collect::<Vec<_>>())
        .bind(last_version)
        .bind(prev_hash.as_slice());
    let query = match command {
        Some(c) => {
            query.bind(c.company_id).bind(&c.command_id).bind(&c.command_type).bind(&c.request_hash).bind(&c.outcome)
        }
        None => query,
    };
    let rows = query.fetch_all(executor).await.map_err(|e| map_insert_error(e, write, last_version, command))?;
    if rows.len() != recorded.len() {
        // Nothing was written by this statement (it inserts all rows or none):
        // the predecessor is not what the caller believed, or it is but was
        // committed after this transaction took its id.
        return Ok(None);
    }
    for row in rows {
        let version: i64 = row.try_get("stream_version")?;
        if let Some(r) = recorded.get_mut((version - last_version - 1) as usize) {
            r.position = row.try_get("position")?;
        }
    }
    Ok(Some(recorded))
}
