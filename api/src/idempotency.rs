//! Lifetimes of `Idempotency-Key`s (ADR 0015): which process holds a key
//! while its request runs, when a holder counts as gone, and expiry.
//!
//! Every process that serves the API holds a session-level Postgres advisory
//! lock `(LOCK_SPACE, instance)` on a connection of its own for as long as it
//! lives, and writes its `instance` into the claims it makes. Postgres drops
//! the lock the moment that connection ends (the process exited, was killed,
//! or lost the database), so any process can tell a claim of a dead process
//! from one still running: the former is free at once, the latter is honoured
//! for at most the request timeout plus [`LEASE_SLACK`]. Several API processes
//! sharing one database follow the same rule; it needs session-level locks,
//! so connect to Postgres directly or through a pooler in session mode.

use std::{sync::LazyLock, time::Duration};

use anyhow::Context;
use rand::Rng;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// The first key of the liveness locks (the second is the instance).
pub const LOCK_SPACE: i32 = 20_051_011;

/// How much longer than the request timeout a live process's claim is honoured.
pub const LEASE_SLACK: Duration = Duration::from_secs(30);

static INSTANCE: LazyLock<i32> = LazyLock::new(|| rand::thread_rng().gen_range(1..i32::MAX));

/// This process's instance id (written into its claims).
pub fn instance() -> i32 {
    *INSTANCE
}

async fn lock(database_url: &str) -> Result<PgConnection, sqlx::Error> {
    let mut connection = PgConnection::connect(database_url).await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(LOCK_SPACE)
        .bind(instance())
        .fetch_one(&mut connection)
        .await?;
    if !held {
        tracing::error!(instance = instance(), "another live process holds this instance id; its claims look alive");
    }
    Ok(connection)
}

/// Takes this process's liveness lock and keeps it until `shutdown`
/// (reconnecting if the connection drops). Returns once the lock is held, so
/// claims made afterwards are recognisably alive.
pub async fn hold_liveness(
    database_url: String,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut connection = lock(&database_url).await?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            if sqlx::query("SELECT 1").execute(&mut connection).await.is_ok() {
                continue;
            }
            tracing::warn!("the liveness connection dropped; reconnecting");
            match lock(&database_url).await {
                Ok(c) => connection = c,
                Err(error) => tracing::warn!(%error, "cannot re-take the liveness lock; will retry"),
            }
        }
    }))
}

/// Frees the claims of processes that are gone (at start, and with each prune).
pub async fn release_dead_claims(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM idempotent_responses WHERE status = 0 AND idempotency_claim_abandoned(instance)")
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}

/// Deletes stored responses older than `ttl` (their keys are free again) and
/// the claims of dead processes.
pub async fn prune(pool: &PgPool, ttl: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotent_responses WHERE (status <> 0 AND created_at < now() - $1 * interval '1 second') \
         OR (status = 0 AND idempotency_claim_abandoned(instance))",
    )
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The periodic prune (workers and serve): every tenth of the TTL, at most hourly.
pub async fn run_pruner(pool: PgPool, ttl: Duration, shutdown: CancellationToken) {
    let every = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        match prune(&pool, ttl).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned expired idempotent responses"),
            Err(error) => tracing::warn!(%error, "pruning idempotent responses failed; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Takes this process's liveness lock and frees the Idempotency-Key claims of
/// processes that are gone (ADR 0015).
pub async fn start(
    tasks: &mut JoinSet<()>,
    config: &Config,
    pool: &PgPool,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let holder =
        hold_liveness(config.database_url.clone(), shutdown.clone()).await.context("cannot take the liveness lock")?;
    tasks.spawn(async move {
        let _ = holder.await;
    });
    // Not fatal: claims of dead processes are also free to whoever retries.
    match release_dead_claims(pool).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "released Idempotency-Key claims of processes that are gone"),
        Err(error) => tracing::warn!(%error, "could not release dead Idempotency-Key claims at start"),
    }
    Ok(())
}
