//! Cross-process wake-ups: appends are announced with Postgres NOTIFY after
//! commit, never inside the appending transaction.
//!
//! NOTIFY inside a transaction takes a database-wide lock at commit that would
//! serialize every appending transaction behind one another's fsync. Announcing
//! after commit, coalesced, keeps commits grouping. A lost announcement (a crash
//! between commit and NOTIFY) only delays readers until their fallback poll.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{EventStore, EVENTS_CHANNEL};

/// Relays this process's commits to other processes, coalescing bursts.
pub async fn run_announcer(store: EventStore, instance: Uuid, shutdown: CancellationToken) {
    let mut commits = store.subscribe_local_commits();
    loop {
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        // Let a burst of commits collapse into one announcement.
        tokio::time::sleep(Duration::from_millis(2)).await;
        commits.mark_unchanged();
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EVENTS_CHANNEL)
            .bind(instance.to_string())
            .execute(store.pool())
            .await
        {
            tracing::warn!(%error, "could not announce appended events");
        }
    }
}

/// Wakes local readers when another process announces an append.
pub async fn run_listener(store: EventStore, instance: Uuid, shutdown: CancellationToken) {
    loop {
        match PgListener::connect_with(store.pool()).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(EVENTS_CHANNEL).await {
                    tracing::warn!(%error, "could not LISTEN for appended events");
                } else {
                    // Anything appended while we were not listening.
                    store.wake_readers();
                    loop {
                        tokio::select! {
                            n = listener.recv() => match n {
                                Ok(n) if n.payload() != instance.to_string() => store.wake_readers(),
                                Ok(_) => {}
                                Err(error) => { tracing::warn!(%error, "event listener lost its connection"); break; }
                            },
                            _ = shutdown.cancelled() => return,
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not connect the event listener"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
