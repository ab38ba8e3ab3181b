//! The background tasks a role starts: wake-ups, workers, projectors, the relay.

use std::sync::Arc;

use anyhow::Context;
use commands::EventStore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{config::Config, state::AppState};

/// Background tasks of the log: cross-process wake-ups.
pub fn spawn_signals(tasks: &mut JoinSet<()>, store: &EventStore, shutdown: &CancellationToken) {
    let instance = Uuid::new_v4();
    tasks.spawn(commands::announce::run_announcer(store.clone(), instance, shutdown.clone()));
    tasks.spawn(commands::announce::run_listener(store.clone(), instance, shutdown.clone()));
}

/// Runs the workers: the session manager (reactions to chargers and payments;
/// settlement, refund and receipt queues), the webhook scheduler and
/// dispatcher, and the payment reconciler (intents
/// whose gateway outcome is unknown, or a PIX waiting for payment).
pub fn spawn_workers(tasks: &mut JoinSet<()>, state: &AppState, shutdown: &CancellationToken) {
    tasks.spawn(state.sessions.clone().run(shutdown.clone(), std::time::Duration::from_millis(250)));
    tasks.spawn(state.webhooks.clone().run(shutdown.clone(), std::time::Duration::from_millis(250)));
    tasks.spawn(crate::idempotency::run_pruner(
        state.pool.clone(),
        state.config.limits.idempotency_ttl,
        shutdown.clone(),
    ));
    let (payments, pool, interval, shutdown) =
        (state.payments.clone(), state.pool.clone(), state.config.payments.reconcile_interval, shutdown.clone());
    // Leave alone what a request is still waiting on.
    let grace = state.config.payments.pagarme_timeout + std::time::Duration::from_secs(1);
    tasks.spawn(async move {
        loop {
            match projections::payments::in_flight(&pool, chrono::Utc::now(), grace, 100).await {
                Ok(intents) => {
                    for (id, company) in intents {
                        let actor = commands::payments::Actor {
                            company,
                            actor: "system:reconciler".into(),
                            correlation: Uuid::now_v7(),
                        };
                        if let Err(error) = payments.reconcile(&actor, id).await {
                            tracing::warn!(%id, %error, "reconciliation failed; will retry");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "reconciler could not list intents"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

/// Starts every projector and the sealer.
pub fn spawn_projectors(tasks: &mut JoinSet<()>, store: &EventStore, config: &Config, shutdown: &CancellationToken) {
    for projector in projections::all() {
        tasks.spawn(projections::runtime::run(store.clone(), projector, shutdown.clone()));
    }
    let (store, interval, shutdown) = (store.clone(), config.seal_interval, shutdown.clone());
    tasks.spawn(async move {
        loop {
            if let Err(error) = commands::seal::seal_all(&store).await {
                tracing::warn!(%error, "sealing failed; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

/// Starts the Kafka relay when Kafka is configured (ADR 0011); returns what
/// it reports, for the health checks of this process.
pub fn spawn_relay(
    tasks: &mut JoinSet<()>,
    store: &EventStore,
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<gateways::kafka::RelayStatus>>> {
    let Some(kafka) = &config.kafka else { return Ok(None) };
    let relay = gateways::kafka::Relay::new(store.clone(), kafka.clone()).context("Kafka relay")?;
    let status = relay.status();
    tasks.spawn(relay.run(shutdown.clone()));
    Ok(Some(status))
}
