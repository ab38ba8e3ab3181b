//! The projector runtime: checkpoints, catch-up, live tail and rebuild.
//!
//! A projector applies events to the tables in its own Postgres schema and moves
//! its checkpoint in the same transaction, so a read model is always exactly the
//! log up to its checkpoint. Events are read outside that transaction, below the
//! log's watermark, so the projector never skips one; the transaction declares
//! itself read-only for the log ([`begin`]), so its writes never hold the
//! watermark back either.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use commands::{EventStore, RecordedEvent, StoreError};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;

/// Events applied per transaction.
pub const BATCH: i64 = 500;
/// Poll interval when committed events are held back by an older open transaction.
const HELD_BACK_POLL: Duration = Duration::from_millis(20);
/// Poll interval when idle, in case a wake-up was lost.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Errors of a projector.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the read model failed.
    #[error("read model write failed: {0}")]
    Database(#[from] sqlx::Error),
    /// An event could not be decoded.
    #[error("event at position {position} is unreadable: {reason}")]
    Decode {
        /// Global log position of the event that could not be decoded.
        position: i64,
        /// What the decoder objected to, as its error message.
        reason: String,
    },
    /// No projector of that name.
    #[error("no projector named {0}")]
    Unknown(String),
}

/// Builds one read model from the log.
#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Name, used for the checkpoint, metrics and `projections rebuild NAME`.
    fn name(&self) -> &'static str;
    /// Postgres schema owning the read-model tables (created by a migration).
    /// The projector's SQL names its tables unqualified; the runtime points
    /// `search_path` at the live schema, or at the shadow copy during a rebuild.
    fn schema(&self) -> &'static str;
    /// Applies one event. Events it does not care about are ignored.
    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError>;
}

/// The checkpoint of a projector (0 when it has never run).
pub async fn checkpoint(pool: &PgPool, name: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> = sqlx::query_scalar("SELECT position FROM projector_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(position.unwrap_or(0))
}

/// Starts a read-model transaction: declared read-only for the log first
/// (`events_read_only_transaction()`, migration 0015), so the xid it takes
/// for its writes does not hold back the log's other readers while the batch
/// is applied, and the database refuses it any append.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT events_read_only_transaction()").execute(&mut *tx).await?;
    Ok(tx)
}

async fn lock_checkpoint(tx: &mut Transaction<'_, Postgres>, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("INSERT INTO projector_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(&mut **tx)
        .await?;
    sqlx::query_scalar("SELECT position FROM projector_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .fetch_one(&mut **tx)
        .await
}

async fn save_checkpoint(tx: &mut Transaction<'_, Postgres>, name: &str, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE projector_checkpoints SET position = $2, updated_at = now() WHERE name = $1")
        .bind(name)
        .bind(position)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Schema names come from code, never from input; this keeps them to identifiers.
fn ident(name: &str) -> &str {
    debug_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
    name
}

/// Applies `events` inside `tx` into `schema`.
async fn apply_events(
    tx: &mut Transaction<'_, Postgres>,
    projector: &dyn Projector,
    schema: &str,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    sqlx::query(&format!("SET LOCAL search_path TO {}, public", ident(schema))).execute(&mut **tx).await?;
    for event in events {
        projector.apply(tx, event).await?;
    }
    Ok(())
}

/// Applies one batch after the checkpoint `checkpoint_name` into `schema`.
/// Returns the number of events applied (0 when caught up).
async fn step(
    store: &EventStore,
    projector: &dyn Projector,
    checkpoint_name: &str,
    schema: &str,
) -> Result<usize, ProjectionError> {
    let from = checkpoint(store.pool(), checkpoint_name).await?;
    let events = store.read_all(from, BATCH).await?;
    let Some(last) = events.last() else {
        return Ok(0);
    };
    let mut tx = begin(store.pool()).await?;
    if lock_checkpoint(&mut tx, checkpoint_name).await? != from {
        // Someone else (another instance, or a rebuild swap) moved it: read again.
        tx.rollback().await?;
        return Ok(0);
    }
    apply_events(&mut tx, projector, schema, &events).await?;
    save_checkpoint(&mut tx, checkpoint_name, last.position).await?;
    tx.commit().await?;
    Ok(events.len())
}

/// Applies everything currently readable. Returns the number of events applied.
pub async fn catch_up(store: &EventStore, projector: &dyn Projector) -> Result<usize, ProjectionError> {
    let mut total = 0;
    loop {
        let n = step(store, projector, projector.name(), projector.schema()).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// Runs a projector until shutdown: catch up from its checkpoint, then tail the
/// log, woken by appends (in-process, or NOTIFY from other processes).
pub async fn run(store: EventStore, projector: Arc<dyn Projector>, shutdown: CancellationToken) {
    let mut wakeups = store.subscribe();
    loop {
        wakeups.mark_unchanged();
        let wait = match catch_up(&store, projector.as_ref()).await {
            Ok(_) => match store.held_back_after(checkpoint(store.pool(), projector.name()).await.unwrap_or(0)).await {
                Ok(true) => HELD_BACK_POLL,
                _ => IDLE_POLL,
            },
            Err(error) => {
                tracing::error!(projector = projector.name(), %error, "projector failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wakeups.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Waits until the projector has applied `position`, up to `timeout`.
/// Returns whether it got there.
pub async fn wait_for(pool: &PgPool, name: &str, position: i64, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if checkpoint(pool, name).await.is_ok_and(|cp| cp >= position) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Rebuilds a read model from the log into a shadow schema while the live one
/// keeps serving, then swaps them in one transaction. `progress(applied, total)`
/// is called after each batch.
pub async fn rebuild(
    store: &EventStore,
    projector: &dyn Projector,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, ProjectionError> {
    let live = ident(projector.schema()).to_owned();
    let shadow = format!("{live}__rebuild");
    let shadow_checkpoint = format!("{}__rebuild", projector.name());
    let pool = store.pool();
    let total = store.count_after(0, i64::MAX).await? as u64;

    let mut tx = begin(pool).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {shadow} CASCADE")).execute(&mut *tx).await?;
    sqlx::query(&format!("CREATE SCHEMA {shadow}")).execute(&mut *tx).await?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename")
            .bind(&live)
            .fetch_all(&mut *tx)
            .await?;
    for table in &tables {
        let table = ident(table);
        sqlx::query(&format!("CREATE TABLE {shadow}.{table} (LIKE {live}.{table} INCLUDING ALL)"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("INSERT INTO projector_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO UPDATE SET position = 0")
        .bind(&shadow_checkpoint)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let mut applied = 0u64;
    loop {
        let n = step(store, projector, &shadow_checkpoint, &shadow).await?;
        if n == 0 {
            break;
        }
        applied += n as u64;
        progress(applied, total.max(applied));
    }

    // Swap: hold the live checkpoint so the live projector pauses, apply what
    // arrived meanwhile, and replace the live schema with the shadow.
    let mut tx = begin(pool).await?;
    lock_checkpoint(&mut tx, projector.name()).await?;
    let mut position = checkpoint(pool, &shadow_checkpoint).await?;
    loop {
        let events = store.read_all(position, BATCH).await?;
        let Some(last) = events.last() else { break };
        position = last.position;
        applied += events.len() as u64;
        apply_events(&mut tx, projector, &shadow, &events).await?;
    }
    sqlx::query("RESET search_path").execute(&mut *tx).await?;
    sqlx::query(&format!("DROP SCHEMA {live} CASCADE")).execute(&mut *tx).await?;
    sqlx::query(&format!("ALTER SCHEMA {shadow} RENAME TO {live}")).execute(&mut *tx).await?;
    sqlx::query(&format!("GRANT USAGE ON SCHEMA {live} TO chargeledger_app")).execute(&mut *tx).await?;
    sqlx::query(&format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {live} TO chargeledger_app"))
        .execute(&mut *tx)
        .await?;
    save_checkpoint(&mut tx, projector.name(), position).await?;
    sqlx::query("DELETE FROM projector_checkpoints WHERE name = $1").bind(&shadow_checkpoint).execute(&mut *tx).await?;
    tx.commit().await?;
    progress(applied, total.max(applied));
    Ok(applied)
}
