//! Shared state of the HTTP handlers.

use std::{sync::Arc, time::Instant};

use commands::EventStore;
use sqlx::PgPool;

use crate::{auth::TokenVerifier, config::Config, metrics::Metrics};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Settings loaded at start (defaults, TOML file, environment); read-only.
    pub config: Arc<Config>,
    /// Pool for read-model queries.
    pub pool: PgPool,
    /// The event log.
    pub store: EventStore,
    /// Token verification.
    pub verifier: TokenVerifier,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Process start, for uptime.
    pub started: Instant,
    /// The OCPP gateway, when it runs in this process.
    pub gateway: Option<gateways::ocpp::Gateway>,
    /// Payment intents and wallets over the configured payment gateway.
    pub payments: commands::payments::Payments,
    /// Charge sessions (orchestration, queues).
    pub sessions: commands::sessions::Sessions,
    /// Webhook subscriptions and deliveries.
    pub webhooks: commands::webhooks::Webhooks,
    /// Why a URL may not be a webhook target (the sender's guard).
    pub webhook_sender: Arc<gateways::webhooks::HttpWebhookSender>,
    /// A Kafka client for health checks, when Kafka is configured.
    pub kafka: Option<gateways::kafka::KafkaProbe>,
    /// What the Kafka relay reports, when it runs in this process (a relay
    /// elsewhere records where it stopped in the database).
    pub relay: Option<Arc<gateways::kafka::RelayStatus>>,
}
