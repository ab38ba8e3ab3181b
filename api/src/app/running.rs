//! A server started in-process, for tests and embedding.

use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    bind_api, bind_gateway, build::spawn_gateway, check_secrets, spawn_projectors, spawn_relay, spawn_signals,
    spawn_workers, state,
};
use crate::{config::Config, state::AppState};

/// A running server started by [`start`], for tests and embedding.
#[derive(Debug)]
pub struct Running {
    /// Where the API listens.
    pub addr: std::net::SocketAddr,
    /// Where the OCPP gateway listens (with `background`).
    pub ocpp_addr: Option<std::net::SocketAddr>,
    /// Where `/metrics` and `/health/detailed` listen, with `CHARGELEDGER_METRICS_ADDR`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The shared state (pool, store, metrics).
    pub state: AppState,
    /// Cancel to stop everything.
    pub shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Base URL of the API.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and its background tasks.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts the API (and, with `background`, projectors, sealer and wake-ups) on
/// an existing pool; the port comes from the configuration (0 for any).
pub async fn start(config: Config, pool: PgPool, background: bool) -> anyhow::Result<Running> {
    check_secrets(&config, true)?;
    // A database the log must not be written on is refused; one that cannot
    // be reached yet is not (the API starts and reports it on /health/ready).
    match commands::deployment::check_writable(&pool).await {
        Err(commands::deployment::DeploymentError::Database(error)) => {
            tracing::warn!(%error, "cannot check the database yet");
        }
        other => other?,
    }
    let mut state = state(config, pool)?;
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    crate::idempotency::start(&mut tasks, &state.config, &state.pool, &shutdown).await?;
    let mut ocpp_addr = None;
    if background {
        spawn_signals(&mut tasks, &state.store, &shutdown);
        spawn_projectors(&mut tasks, &state.store, &state.config, &shutdown);
        let (addr, listener, gateway) = bind_gateway(&mut state).await?;
        spawn_gateway(&mut tasks, gateway, listener, &shutdown);
        spawn_workers(&mut tasks, &state, &shutdown);
        state.relay = spawn_relay(&mut tasks, &state.store, &state.config, &shutdown)?;
        ocpp_addr = Some(addr);
    }
    let bound = bind_api(state.clone()).await?;
    let (addr, metrics_addr) = (bound.addr, bound.metrics_addr);
    let token = shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) = bound.serve(token).await {
            tracing::error!(%error, "server stopped");
        }
    });
    Ok(Running { addr, ocpp_addr, metrics_addr, state, shutdown, tasks })
}
