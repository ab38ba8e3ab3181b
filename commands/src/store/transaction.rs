//! Several appends in one database transaction.

use std::sync::Arc;

use sqlx::{Postgres, Row, Transaction};

use super::{
    append::{insert_events, known_predecessor, refusal},
    CommandRecord, EventStore, ExpectedVersion, RecordedEvent, Signals, StoreError, StreamWrite,
    MAX_EVENTS_PER_TRANSACTION,
};
use crate::hashing::{Hash, ZERO_HASH};

impl EventStore {
    /// Starts a transaction in which several appends can be made atomically.
    pub async fn begin(&self) -> Result<LogTransaction, StoreError> {
        Ok(LogTransaction { tx: self.pool.begin().await?, next_index: 0, signals: self.signals.clone() })
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

    /// Appends several streams' events and records `command` with them. The
    /// command row rides in the insert of the first write whose predecessor
    /// the caller knows (one statement less per multi-stream command, and its
    /// predecessor check guards the command row too); without such a write it
    /// is recorded first on its own.
    pub async fn append_all(
        &mut self,
        writes: &[StreamWrite],
        command: Option<&CommandRecord>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let carrier = |w: &StreamWrite| !w.events.is_empty() && known_predecessor(w).is_some();
        let mut command = command;
        if let Some(record) = command.filter(|_| !writes.iter().any(carrier)) {
            self.record_command(record).await?;
            command = None;
        }
        let mut recorded = Vec::new();
        for write in writes {
            let with = command.filter(|_| carrier(write));
            recorded.extend(self.append_recording(write, with).await?);
            if with.is_some() {
                command = None;
            }
        }
        Ok(recorded)
    }

    /// Appends one stream's events with its concurrency check.
    pub async fn append(&mut self, write: &StreamWrite) -> Result<Vec<RecordedEvent>, StoreError> {
        self.append_recording(write, None).await
    }

    async fn append_recording(
        &mut self,
        write: &StreamWrite,
        command: Option<&CommandRecord>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if write.events.is_empty() {
            return Ok(vec![]);
        }
        if self.next_index + write.events.len() > MAX_EVENTS_PER_TRANSACTION {
            return Err(StoreError::TooManyEvents);
        }
        let (last_version, prev_hash) = self.resolve_expected(write).await?;
        let Some(recorded) =
            insert_events(&mut *self.tx, write, last_version, prev_hash, self.next_index, command).await?
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
