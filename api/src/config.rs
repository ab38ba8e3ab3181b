//! Configuration: defaults, then an optional TOML file, then the environment.
//!
//! Every setting is declared once, in `settings.rs`: its key, variable, type,
//! default and help line. The layers (figment, `layers.rs`), `--help` and the
//! errors are generated from that table; `build.rs` turns the flat `Settings`
//! into the [`Config`] the roles use. Secrets are `secrecy` types and `Config`'s `Debug`
//! prints none of them.

use std::{net::SocketAddr, path::Path, time::Duration};

use secrecy::SecretString;

mod build;
mod debug;
mod layers;
mod limits;
mod ocpp_limits;
mod secrets;
mod settings;
#[cfg(test)]
mod tests;
mod values;

pub use layers::EnvLookup;
pub use limits::LimitsConfig;
pub use secrets::{weakness, DEV_JWT_SECRET, MIN_SECRET_BYTES};
use settings::Settings;
pub use settings::{settings_help, Setting, CONFIG_FILE_ENV, SETTINGS};

/// Runtime configuration of every role.
///
/// `Debug` is written out (see `debug.rs`): it masks the database password and
/// the values of the Kafka properties, which the field types cannot.
#[derive(Clone)]
pub struct Config {
    /// Postgres URL of the event log and read models.
    pub database_url: String,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// HS256 secret (empty when unset: every role refuses to start then).
    pub jwt_secret: SecretString,
    /// Required `iss` of tokens, when set.
    pub jwt_issuer: Option<String>,
    /// Required `aud` of tokens, when set.
    pub jwt_audience: Option<String>,
    /// PEM of an RSA public key for RS256 tokens.
    pub jwt_public_key_pem: Option<String>,
    /// Pool size.
    pub db_max_connections: u32,
    /// Online window of terminals.
    pub terminal_online: chrono::Duration,
    /// How long a write waits for its read model before answering.
    pub consistency_wait: Duration,
    /// Sealer cadence.
    pub seal_interval: Duration,
    /// OCPP gateway settings.
    pub ocpp: gateways::ocpp::OcppConfig,
    /// Payment settings.
    pub payments: PaymentsConfig,
    /// SMTP URL for receipts.
    pub smtp_url: Option<SecretString>,
    /// Sender of receipts.
    pub smtp_from: String,
    /// Charge orchestration settings.
    pub sessions: commands::sessions::SessionConfig,
    /// Unsafe: lets drivers start sessions with the tariff they send (until tariffs live on the server).
    pub trust_client_tariff: bool,
    /// Kafka relay settings; `None` runs without Kafka (the embedded default).
    pub kafka: Option<gateways::kafka::KafkaConfig>,
    /// Webhook delivery settings.
    pub webhooks: commands::webhooks::WebhookConfig,
    /// Whether webhooks may target loopback and private addresses.
    pub webhook_allow_private: bool,
    /// Ports webhooks may use on other targets (`None`: any).
    pub webhook_allowed_ports: Option<Vec<u16>>,
    /// Key of data at rest: CPMS credentials, request fingerprints (never the JWT secret).
    pub secrets_key: Option<SecretString>,
    /// Abuse limits of the REST port and idempotency-key expiry.
    pub limits: LimitsConfig,
    /// The platform's clock: webhook schedules, the session manager's
    /// deadlines and retries, and the times payment and session events carry
    /// (tests move it forward instead of waiting).
    pub clock: commands::clock::Clock,
    /// Tracing filter.
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
}

/// Which payment gateway, and how to reach and trust Pagar.me.
#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// `simulator` or `pagarme`.
    pub gateway: String,
    /// Pagar.me base URL.
    pub pagarme_base_url: String,
    /// Pagar.me secret key.
    pub pagarme_secret_key: Option<SecretString>,
    /// Pagar.me request timeout.
    pub pagarme_timeout: Duration,
    /// Basic auth the webhook URL requires.
    pub webhook_basic: Option<(String, SecretString)>,
    /// PEM RSA public keys that may sign webhooks.
    pub webhook_public_keys_pem: Option<String>,
    /// PIX validity.
    pub pix_expires_secs: i64,
    /// Simulator: PIX paid after this.
    pub simulator_pix_autopay: Duration,
    /// Reconciler cadence.
    pub reconcile_interval: Duration,
}

impl PaymentsConfig {
    /// The table's defaults (the simulator).
    fn defaults() -> Self {
        build::payments(&Settings::defaults()).expect("the defaults of the settings table are valid (unit-tested)")
    }
}

/// A configuration problem, named by setting.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Every setting at its default (no file, no environment).
    pub fn defaults() -> Self {
        layers::Layers::new(None, &|_| None)
            .and_then(|layers| Settings::read(&layers))
            .expect("the defaults of the settings table are valid (unit-tested)")
    }
}

impl Config {
    /// The webhook target policy (SSRF guard).
    pub fn webhook_targets(&self) -> gateways::webhooks::TargetPolicy {
        gateways::webhooks::TargetPolicy {
            allow_internal: self.webhook_allow_private,
            allowed_ports: self.webhook_allowed_ports.clone(),
        }
    }

    /// Loads defaults, then `file` (or `CHARGELEDGER_CONFIG`), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with the environment read through `env` (unit tests
    /// pass a map: they must not change the process environment).
    pub fn load_with(file: Option<&Path>, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let settings = Settings::read(&layers::Layers::new(file, env)?)?;
        build::config(settings)
    }

    /// A configuration for tests: the given database, port 0, fresh random
    /// secrets (tokens are minted from the configuration).
    pub fn for_tests(database_url: String) -> Self {
        Self {
            database_url,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: SecretString::from(Self::random_secret()),
            jwt_issuer: None,
            jwt_audience: None,
            // No rate limiter: tests poll; tests/limits.rs turns it on.
            limits: LimitsConfig { rate_per_min: 0, ..LimitsConfig::default() },
            jwt_public_key_pem: None,
            db_max_connections: 8,
            terminal_online: chrono::Duration::seconds(600),
            consistency_wait: Duration::from_secs(5),
            seal_interval: Duration::from_millis(200),
            ocpp: {
                let mut ocpp = gateways::ocpp::OcppConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
                ocpp.call_timeout = Duration::from_secs(5);
                ocpp
            },
            payments: PaymentsConfig::defaults(),
            smtp_url: None,
            smtp_from: "ChargeLedger <recibos@chargeledger.local>".into(),
            sessions: commands::sessions::SessionConfig::default(),
            trust_client_tariff: false,
            kafka: None,
            webhooks: commands::webhooks::WebhookConfig::default(),
            webhook_allow_private: true,
            webhook_allowed_ports: Some(vec![80, 443]),
            secrets_key: Some(SecretString::from(Self::random_secret())),
            clock: commands::clock::Clock::default(),
            log: "warn".into(),
            log_format: "text".into(),
        }
    }
}
