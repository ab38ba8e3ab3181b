//! The roles of `chargeledger <role>`, one process each (or all, `serve`).

use commands::EventStore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    bind_api, bind_gateway, build::spawn_gateway, check_secrets, connect, connect_writable, create_database_if_missing,
    migrate, spawn_projectors, spawn_relay, spawn_signals, spawn_workers, state,
};
use crate::config::Config;

/// `chargeledger relay`: the Kafka relay only.
pub async fn run_relay(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_secrets(&config, false)?;
    if config.kafka.is_none() {
        anyhow::bail!("the relay needs CHARGELEDGER_KAFKA_BROKERS");
    }
    let pool = connect_writable(&config).await?;
    let store = EventStore::new(pool);
    let mut tasks = JoinSet::new();
    spawn_signals(&mut tasks, &store, &shutdown);
    spawn_relay(&mut tasks, &store, &config, &shutdown)?;
    tracing::info!(brokers = config.kafka.as_ref().map(|k| k.brokers.as_str()), "relay running");
    shutdown.cancelled().await;
    tasks.shutdown().await;
    Ok(())
}

/// `chargeledger api`: the HTTP API only.
pub async fn run_api(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_secrets(&config, true)?;
    let pool = connect_writable(&config).await?;
    let state = state(config, pool)?;
    let mut tasks = JoinSet::new();
    crate::idempotency::start(&mut tasks, &state.config, &state.pool, &shutdown).await?;
    spawn_signals(&mut tasks, &state.store, &shutdown);
    let bound = bind_api(state).await?;
    tracing::info!(addr = %bound.addr, "API listening");
    bound.serve(shutdown).await?;
    tasks.shutdown().await;
    Ok(())
}

/// `chargeledger project`: projectors and the sealer only.
pub async fn run_project(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_secrets(&config, false)?;
    let pool = connect_writable(&config).await?;
    let store = EventStore::new(pool);
    let mut tasks = JoinSet::new();
    spawn_signals(&mut tasks, &store, &shutdown);
    spawn_projectors(&mut tasks, &store, &config, &shutdown);
    tracing::info!("projectors running");
    shutdown.cancelled().await;
    tasks.shutdown().await;
    Ok(())
}

/// `chargeledger workers`: the session manager and its queues, the webhook
/// scheduler and dispatcher, the payment reconciler and the idempotency-key
/// pruner; with the cross-process wake-ups, so what the workers append wakes
/// the other processes at once (and theirs wake the workers), not on a poll.
pub async fn run_workers(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_secrets(&config, false)?;
    let pool = connect_writable(&config).await?;
    let state = state(config, pool)?;
    let mut tasks = JoinSet::new();
    spawn_signals(&mut tasks, &state.store, &shutdown);
    spawn_workers(&mut tasks, &state, &shutdown);
    tracing::info!(gateway = state.payments.gateway_name(), "workers running");
    shutdown.cancelled().await;
    tasks.shutdown().await;
    Ok(())
}

/// `chargeledger ocpp`: the OCPP gateway only.
pub async fn run_ocpp(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_secrets(&config, false)?;
    let pool = connect_writable(&config).await?;
    let mut state = state(config, pool)?;
    let mut tasks = JoinSet::new();
    spawn_signals(&mut tasks, &state.store, &shutdown);
    let (addr, listener, gateway) = bind_gateway(&mut state).await?;
    tracing::info!(%addr, "OCPP gateway listening");
    gateway.serve(listener, shutdown).await?;
    tasks.shutdown().await;
    Ok(())
}

/// `chargeledger serve`: migrate, then every role in one process.
pub async fn run_serve(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_secrets(&config, true)?;
    create_database_if_missing(&config).await?;
    let pool = connect(&config).await?;
    migrate(&pool).await?;
    let mut state = state(config, pool)?;
    let mut tasks = JoinSet::new();
    crate::idempotency::start(&mut tasks, &state.config, &state.pool, &shutdown).await?;
    spawn_signals(&mut tasks, &state.store, &shutdown);
    spawn_projectors(&mut tasks, &state.store, &state.config, &shutdown);
    let (ocpp_addr, listener, gateway) = bind_gateway(&mut state).await?;
    spawn_gateway(&mut tasks, gateway, listener, &shutdown);
    spawn_workers(&mut tasks, &state, &shutdown);
    state.relay = spawn_relay(&mut tasks, &state.store, &state.config, &shutdown)?;
    let relay = state.relay.is_some();
    let bound = bind_api(state).await?;
    tracing::info!(addr = %bound.addr, %ocpp_addr, relay, "chargeledger serving (api, ocpp, projectors, sealer, workers)");
    bound.serve(shutdown).await?;
    tasks.shutdown().await;
    Ok(())
}
