//! Building the shared state and the OCPP gateway of a process.

use std::{sync::Arc, time::Instant};

use anyhow::Context;
use commands::EventStore;
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{auth::TokenVerifier, config::Config, metrics::Metrics, state::AppState};

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
        commands::payments::Payments::new(store.clone(), payment_gateway(&config)?, config.payments.pix_expires_secs)
            .with_clock(config.clock.clone());
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
    )
    .with_clock(config.clock.clone());
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
pub(super) fn spawn_gateway(
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
