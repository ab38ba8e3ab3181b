//! Where the log can be written: the checks every role runs at start and
//! `migrate` runs before it migrates (ADR 0002, "Deployment rules").
//!
//! The global order rests on positions taken from the writing transaction's id
//! and on the read watermark of that same cluster. It holds on the primary the
//! log was written on, on a copy made from its WAL (a `pg_basebackup`, a hot
//! standby, a point-in-time recovery) and nowhere else. A standby can serve log
//! readers (the watermark uses its snapshot's xmin) but not writers; a
//! `pg_dump` restore into a cluster whose transaction counter is behind the log
//! must first advance the counter; a logical-replication subscriber's
//! transaction ids have nothing to do with the positions it receives.

use sqlx::PgPool;

/// A database the platform must not write the log on.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// A hot standby (in recovery).
    #[error(
        "this database is a hot standby (in recovery): point CHARGELEDGER_DATABASE_URL at the primary. \
         A standby may serve log readers (EventStore::read_all) but nothing that writes"
    )]
    Standby,
    /// The events table is a logical-replication subscription target.
    #[error(
        "the events table here is a logical-replication subscriber: its positions are the origin's transaction \
         ids and this cluster's watermark cannot order them. Run chargeledger (API, projectors, relay) against \
         the origin; read this copy with SQL only (ADR 0002)"
    )]
    Subscriber,
    /// The transaction counter is behind the log (a restore into another cluster).
    #[error(
        "the event log is ahead of this database's transaction counter: its last event was written by \
         transaction {log_xid}, this cluster's counter is at {current_xid} (a pg_dump restore into another \
         cluster?). New events would get positions below restored ones. Stop this cluster, run \
         `pg_resetwal -e {epoch} -D <its data directory>` (advances the transaction id epoch only), start it \
         and run again (restore procedure: docs/adr/0002-gap-free-global-order.md)"
    )]
    CounterBehind {
        /// The id of the transaction that wrote the last event.
        log_xid: i64,
        /// This cluster's current transaction id (with epoch).
        current_xid: i64,
        /// An epoch that puts the counter past the log.
        epoch: i64,
    },
    /// The checks themselves failed.
    #[error("cannot check the database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Refuses a database on which appending to the log would break its order.
/// A database without the events table yet (before the first migration) passes.
pub async fn check_writable(pool: &PgPool) -> Result<(), DeploymentError> {
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(pool).await?;
    if in_recovery {
        return Err(DeploymentError::Standby);
    }
    let has_log: bool = sqlx::query_scalar("SELECT to_regclass('events') IS NOT NULL").fetch_one(pool).await?;
    if !has_log {
        return Ok(());
    }
    let subscribed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_subscription_rel WHERE srrelid = 'events'::regclass)")
            .fetch_one(pool)
            .await?;
    if subscribed {
        return Err(DeploymentError::Subscriber);
    }
    let log_xid: i64 =
        sqlx::query_scalar("SELECT COALESCE(max(position), 0) >> 16 FROM events").fetch_one(pool).await?;
    // Autocommit: takes (and ends) one transaction id, as an append would.
    let current_xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(pool).await?;
    if log_xid > 0 && current_xid <= log_xid {
        return Err(DeploymentError::CounterBehind { log_xid, current_xid, epoch: (log_xid >> 32) + 1 });
    }
    Ok(())
}
