//! Appending: the one-statement fast path, the transaction path with its
//! restarts, and the insert that hashes, chains and checks the predecessor.

use chrono::{SubsecRound, Utc};
use serde_json::Value;
use sqlx::Row;

use super::{
    CommandRecord, EventStore, ExpectedVersion, RecordedEvent, StoreError, StreamWrite, MAX_EVENTS_PER_TRANSACTION,
    ORDER_RESTARTS,
};
use crate::hashing::{event_hash, Hash, HashedFields, ZERO_HASH};

impl EventStore {
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
        let recorded = tx.append_all(writes, command).await?;
        tx.commit().await?;
        Ok(recorded)
    }
}

/// Why the predecessor check refused an append (see [`LogTransaction::append`](super::LogTransaction::append)).
/// `in_transaction`: whether the append ran in a transaction that may have
/// taken its id before its predecessor committed (else order cannot be why).
pub(super) async fn refusal<'e, E: sqlx::PgExecutor<'e>>(
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
pub(super) fn known_predecessor(write: &StreamWrite) -> Option<(i64, Hash)> {
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
pub(super) async fn insert_events<'e, E: sqlx::PgExecutor<'e>>(
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
