//! The HTTP router and the bound API server.

use anyhow::Context;
use axum::{
    middleware,
    routing::{get, post, put},
    Router,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    metrics, openapi,
    routes::{charge, health, ocpp, payments, terminals, webhooks},
    state::AppState,
};

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
    super::docs::routes(router)
        .route(
            "/openapi.json",
            get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi::json()) }),
        )
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
