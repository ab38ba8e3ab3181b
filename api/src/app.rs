//! The roles: each is a function `run_x(config, shutdown)` so tests can start
//! any of them on port 0.

use std::{sync::Arc, time::Instant};

use anyhow::Context;
use axum::{
    middleware,
    response::Html,
    routing::{get, post, put},
    Router,
};
use commands::EventStore;
use sqlx::{postgres::PgPoolOptions, PgPool};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    auth::TokenVerifier,
    config::Config,
    metrics::{self, Metrics},
    openapi,
    routes::{charge, health, ocpp, payments, terminals, webhooks},
    state::AppState,
};

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects to Postgres.
pub async fn connect(config: &Config) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(&config.database_url)
        .await
        .with_context(|| "cannot connect to Postgres (CHARGELEDGER_DATABASE_URL)")
}

/// Connects to the primary the log is written on, refusing a standby, a
/// logical-replication subscriber and a restored copy whose transaction
/// counter is behind the log (ADR 0002, deployment rules).
pub async fn connect_writable(config: &Config) -> anyhow::Result<PgPool> {
    let pool = connect(config).await?;
    commands::deployment::check_writable(&pool).await?;
    Ok(pool)
}

/// Creates the configured database when it does not exist yet.
pub async fn create_database_if_missing(config: &Config) -> anyhow::Result<()> {
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(&config.database_url).await.context("cannot reach Postgres")? {
        tracing::info!("creating the database");
        sqlx::Postgres::create_database(&config.database_url).await.context("cannot create the database")?;
    }
    Ok(())
}

/// Applies pending migrations, after checking that the log may be written
/// here (a restore with a counter behind the log is refused before anything runs).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    commands::deployment::check_writable(pool).await?;
    MIGRATOR.run(pool).await.context("migrations failed")
}

/// The HTTP router with every route.
pub fn router(state: AppState) -> Router {
    let separate_metrics = state.config.limits.metrics_addr.is_some();
    let router = Router::new()
        .route("/v1/terminals", post(terminals::register).get(terminals::list))
        .route("/v1/terminals/stats", get(terminals::stats))
        .route("/v1/terminals/{id}", get(terminals::get))
        .route("/v1/terminals/{id}/health-events", post(terminals::report_health))
        .route("/v1/terminals/{id}/status", put(terminals::update_status))
        .route("/v1/terminals/{id}/charger-password", put(terminals::set_charger_password))
        .route("/v1/terminals/{id}/commands", post(ocpp::command))
        .route("/v1/terminals/{id}/commands/{command_id}", get(ocpp::get_command))
        .route("/v1/terminals/{id}/remote-start", post(ocpp::remote_start))
        .route("/v1/terminals/{id}/remote-stop", post(ocpp::remote_stop))
        .route("/v1/terminals/{id}/charging-profiles", post(ocpp::charging_profile))
        .route("/v1/terminals/{id}/connectors", get(ocpp::connectors))
        .route("/v1/terminals/{id}/transactions", get(ocpp::transactions))
        .route("/v1/payment-intents", post(payments::create).get(payments::list))
        .route("/v1/payment-intents/{id}", get(payments::get))
        .route("/v1/payment-intents/{id}/authorize", post(payments::authorize))
        .route("/v1/payment-intents/{id}/capture", post(payments::capture))
        .route("/v1/payment-intents/{id}/void", post(payments::void))
        .route("/v1/payment-intents/{id}/refund", post(payments::refund))
        .route("/v1/payment-intents/{id}/events", get(payments::events))
        .route("/v1/wallets/{customer_id}", get(payments::wallet))
        .route("/v1/wallets/{customer_id}/top-ups", post(payments::top_up))
        .route("/v1/gateways/pagarme/webhooks", post(payments::pagarme_webhook))
        .route("/charge/start", post(charge::start))
        .route("/charge/stop", post(charge::stop))
        .route("/v1/charge-sessions/{id}", get(charge::get))
        .route("/v1/charge-sessions/{id}/events", get(charge::events))
        .route("/v1/charge-sessions/{id}/refunds", post(charge::refund))
        .route("/v1/adhoc-charges/start", post(charge::adhoc_start))
        .route("/v1/adhoc-charges", get(charge::adhoc_list))
        .route("/v1/adhoc-charges/{id}", get(charge::adhoc_get))
        .route("/v1/adhoc-charges/{id}/progress", put(charge::adhoc_progress))
        .route("/v1/adhoc-charges/{id}/complete", post(charge::adhoc_complete))
        .route(
            "/v1/charging-infrastructure/mappings",
            get(crate::routes::infrastructure::list_mappings).post(crate::routes::infrastructure::create_mapping),
        )
        .route(
            "/v1/charging-infrastructure/mappings/{id}",
            get(crate::routes::infrastructure::get_mapping)
                .patch(crate::routes::infrastructure::update_mapping)
                .delete(crate::routes::infrastructure::delete_mapping),
        )
        .route("/v1/charging-infrastructure/mappings/{id}/test", post(crate::routes::infrastructure::test_mapping))
        .route("/v1/charging-infrastructure/connectors", get(crate::routes::infrastructure::connectors))
        .route("/v1/charging-infrastructure/connectors/summary", get(crate::routes::infrastructure::connector_summary))
        .route("/v1/charging-infrastructure/adapters/health", get(crate::routes::infrastructure::adapter_health))
        .route("/v1/charging-infrastructure/config", get(crate::routes::infrastructure::get_config))
        .route(
            "/v1/charging-infrastructure/config/{adapter_type}",
            axum::routing::patch(crate::routes::infrastructure::update_config),
        )
        .route("/api/v1/webhooks", post(webhooks::register).get(webhooks::list))
        .route("/api/v1/webhooks/{id}", get(webhooks::get).put(webhooks::update).delete(webhooks::deactivate))
        .route("/api/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/api/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/api/v1/webhooks/{id}/rotate-secret", post(webhooks::rotate_secret))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready));
    // With CHARGELEDGER_METRICS_ADDR they are served there only (see metrics_router).
    let router = if separate_metrics { router } else { with_metrics(router) };
    let guard = crate::limits::Guard { state: state.clone(), limiter: Default::default() };
    router
        .route(
            "/openapi.json",
            get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi::json()) }),
        )
        .route("/docs", get(|| async { Html(DOCS_PAGE) }))
        // Authorization of every route above (policy.rs); keep routes above this line.
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::policy::authorize))
        .fallback(|| async { crate::error::ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { crate::error::ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(guard, crate::limits::guard))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

fn with_metrics(router: Router<AppState>) -> Router<AppState> {
    router.route("/health/detailed", get(health::detailed)).route("/metrics", get(health::metrics))
}

/// `/metrics` and `/health/detailed` alone, for `CHARGELEDGER_METRICS_ADDR`.
pub fn metrics_router(state: AppState) -> Router {
    with_metrics(Router::new())
        .fallback(|| async { crate::error::ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

const DOCS_PAGE: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>chargeledger API</title></head>
<body><script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script>
<noscript>The machine-readable description is at <a href="/openapi.json">/openapi.json</a>.</noscript></body></html>"#;

/// Refuses to start with a missing, short or published JWT secret (every
/// role, whatever it binds) and, for the roles that serve requests, without a
/// data key of its own (ADR 0015).
pub fn check_secrets(config: &Config, serves_requests: bool) -> anyhow::Result<()> {
    config.check_jwt_secret()?;
    if serves_requests {
        config.check_secrets_key()?;
    }
    Ok(())
}

/// The payment gateway the configuration names.
pub fn payment_gateway(config: &Config) -> anyhow::Result<Arc<dyn commands::payments::port::PaymentGateway>> {
    use secrecy::ExposeSecret;
    let p = &config.payments;
    Ok(match p.gateway.as_str() {
        "pagarme" => {
            let secret_key = p.pagarme_secret_key.as_ref().map(|k| k.expose_secret().to_owned()).unwrap_or_default();
            let config = gateways::payments::pagarme::PagarmeConfig {
                base_url: p.pagarme_base_url.clone(),
                secret_key,
                timeout: p.pagarme_timeout,
            };
            Arc::new(gateways::payments::pagarme::Pagarme::new(config).context("Pagar.me HTTP client")?)
        }
        _ => Arc::new(gateways::payments::simulator::Simulator::new(p.simulator_pix_autopay)),
    })
}

/// Builds the shared state.
pub fn state(config: Config, pool: PgPool) -> anyhow::Result<AppState> {
    let verifier = TokenVerifier::new(&config).context("CHARGELEDGER_JWT_PUBLIC_KEY_FILE is not an RSA public key")?;
    let store = EventStore::new(pool.clone());
    let payments =
        commands::payments::Payments::new(store.clone(), payment_gateway(&config)?, config.payments.pix_expires_secs);
    let mailer: Option<Arc<dyn commands::sessions::Mailer>> = match &config.smtp_url {
        Some(url) => {
            use secrecy::ExposeSecret;
            let mailer = gateways::email::SmtpMailer::new(url.expose_secret(), &config.smtp_from)
                .map_err(anyhow::Error::msg)
                .context("CHARGELEDGER_SMTP_URL")?;
            Some(Arc::new(mailer))
        }
        None => None,
    };
    let due = Arc::new(projections::sessions::ReadModelSessionQueue::new(pool.clone()));
    let chargers = Arc::new(projections::charger_directory::ReadModelChargerDirectory::new(pool.clone()));
    let sessions = commands::sessions::Sessions::new(
        store.clone(),
        payments.clone(),
        mailer,
        due,
        chargers,
        config.sessions.clone(),
    );
    let kafka = match &config.kafka {
        Some(k) => Some(gateways::kafka::KafkaProbe::new(k).context("CHARGELEDGER_KAFKA_BROKERS / _PROPERTIES")?),
        None => None,
    };
    let webhook_sender = Arc::new(
        gateways::webhooks::HttpWebhookSender::with_policy(config.webhook_targets()).context("webhook HTTP client")?,
    );
    let webhooks = commands::webhooks::Webhooks::new(
        store.clone(),
        webhook_sender.clone(),
        Arc::new(projections::webhooks::ReadModelQueue::new(pool.clone())),
        config.webhooks.clone(),
        config.clock.clone(),
    );
    Ok(AppState {
        webhooks,
        webhook_sender,
        kafka,
        sessions,
        payments,
        store,
        pool,
        verifier,
        metrics: Arc::new(Metrics::new().context("metrics registry")?),
        config: Arc::new(config),
        started: Instant::now(),
        gateway: None,
        relay: None,
    })
}

/// Creates the OCPP gateway of this process and binds its listener.
pub async fn bind_gateway(
    state: &mut AppState,
) -> anyhow::Result<(std::net::SocketAddr, TcpListener, gateways::ocpp::Gateway)> {
    let directory =
        Arc::new(crate::directory::TerminalDirectory { pool: state.pool.clone(), store: state.store.clone() });
    let gateway = gateways::ocpp::Gateway::new(state.store.clone(), state.config.ocpp.clone(), directory);
    let (addr, listener) =
        gateway.bind().await.with_context(|| format!("cannot listen for OCPP on {}", state.config.ocpp.addr))?;
    state.gateway = Some(gateway.clone());
    Ok((addr, listener, gateway))
}

/// Spawns the gateway's server on `tasks`.
fn spawn_gateway(
    tasks: &mut JoinSet<()>,
    gateway: gateways::ocpp::Gateway,
    listener: TcpListener,
    shutdown: &CancellationToken,
) {
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(error) = gateway.serve(listener, shutdown).await {
            tracing::error!(%error, "OCPP gateway stopped");
        }
    });
}

/// A bound HTTP server, ready to run.
#[derive(Debug)]
pub struct Bound {
    /// Where it listens (the real port when configured with port 0).
    pub addr: std::net::SocketAddr,
    /// Where `/metrics` and `/health/detailed` listen, with `CHARGELEDGER_METRICS_ADDR`.
    pub metrics_addr: Option<std::net::SocketAddr>,
    listener: TcpListener,
    metrics: Option<(TcpListener, Router)>,
    router: Router,
    header_timeout: std::time::Duration,
}

/// Binds the API (and the metrics listener, when configured) to its address.
pub async fn bind_api(state: AppState) -> anyhow::Result<Bound> {
    let listener = TcpListener::bind(state.config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", state.config.http_addr))?;
    let metrics = match state.config.limits.metrics_addr {
        Some(addr) => Some((
            TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (metrics)"))?,
            metrics_router(state.clone()),
        )),
        None => None,
    };
    let metrics_addr = metrics.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
    Ok(Bound {
        addr: listener.local_addr()?,
        metrics_addr,
        listener,
        metrics,
        header_timeout: state.config.limits.header_read_timeout,
        router: router(state),
    })
}

impl Bound {
    /// Serves until shutdown.
    pub async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let metrics = self.metrics.map(|(listener, router)| {
            let (shutdown, timeout) = (shutdown.clone(), self.header_timeout);
            tokio::spawn(crate::serve::serve(listener, router, timeout, shutdown))
        });
        crate::serve::serve(self.listener, self.router, self.header_timeout, shutdown).await?;
        if let Some(metrics) = metrics {
            metrics.await??;
        }
        Ok(())
    }
}

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

/// `chargeledger workers`: the payment reconciler (and, later, the other queues).
pub async fn run_workers(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    check_secrets(&config, false)?;
    let pool = connect_writable(&config).await?;
    let state = state(config, pool)?;
    let mut tasks = JoinSet::new();
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
