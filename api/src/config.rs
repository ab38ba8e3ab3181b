//! Configuration: defaults, then an optional TOML file, then the environment.

use std::{net::SocketAddr, path::Path, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

mod limits;
mod ocpp_limits;
mod secrets;

pub use limits::LimitsConfig;
pub use secrets::{weakness, DEV_JWT_SECRET, MIN_SECRET_BYTES};

/// Every setting, for `--help`.
pub const SETTINGS_HELP: &str = "\
SETTINGS (environment variable, file key, default):
  CHARGELEDGER_CONFIG                     path of an optional TOML file with the keys below
  CHARGELEDGER_DATABASE_URL               database_url          postgres://postgres@127.0.0.1:5432/chargeledger
      (falls back to DATABASE_URL)
  CHARGELEDGER_HTTP_ADDR                  http_addr             127.0.0.1:8080
  CHARGELEDGER_JWT_SECRET                 jwt_secret            none: required, at least 32 bytes, no published default
      (./scripts/run.sh generates one into .chargeledger/secrets.env)
  CHARGELEDGER_JWT_ISSUER                 jwt_issuer            none; when set, tokens must carry this `iss` (and `token` sets it)
  CHARGELEDGER_JWT_AUDIENCE               jwt_audience          none; when set, tokens must carry this `aud` (and `token` sets it)
  CHARGELEDGER_JWT_PUBLIC_KEY_FILE        jwt_public_key_file   none; PEM RSA public key: RS256 tokens are then accepted
  CHARGELEDGER_DB_MAX_CONNECTIONS         db_max_connections    16
  CHARGELEDGER_TERMINAL_ONLINE_SECS       terminal_online_secs  600 (seen within this window = online)
  CHARGELEDGER_CONSISTENCY_WAIT_MS        consistency_wait_ms   2000 (how long a write waits for its read model)
  CHARGELEDGER_SEAL_INTERVAL_MS           seal_interval_ms      1000
  CHARGELEDGER_OCPP_ADDR                  ocpp_addr             127.0.0.1:9000 (ws://HOST:PORT/ocpp/{chargePointId})
  CHARGELEDGER_OCPP_AUTO_REGISTER_COMPANY ocpp_auto_register_company  none; a company uuid registers unknown chargers to it
  CHARGELEDGER_OCPP_MAX_FRAME_BYTES       ocpp_max_frame_bytes  65536 (a larger frame closes the connection, 1009)
  CHARGELEDGER_OCPP_PING_SECS             ocpp_ping_secs        30 (two silent intervals close the connection)
  CHARGELEDGER_OCPP_CALL_TIMEOUT_MS       ocpp_call_timeout_ms  30000 (REST commands answer 504 after it)
  CHARGELEDGER_OCPP_HEARTBEAT_SECS        ocpp_heartbeat_secs   300 (interval told to chargers at boot)
  CHARGELEDGER_OCPP_TLS_CERT              ocpp_tls_cert         none; PEM certificate chain: the gateway serves wss:// (security profile 2)
  CHARGELEDGER_OCPP_TLS_KEY               ocpp_tls_key          none; PEM private key of that certificate
  CHARGELEDGER_OCPP_HANDSHAKE_TIMEOUT_MS  ocpp_handshake_timeout_ms  10000 (TCP accept → TLS → upgrade done, or the socket is closed)
  CHARGELEDGER_OCPP_MAX_CONNECTIONS       ocpp_max_connections  20000 (open sockets; beyond it new ones are closed at once)
  CHARGELEDGER_OCPP_MAX_PENDING_HANDSHAKES ocpp_max_pending_handshakes  1000 (sockets still handshaking; beyond it new ones are closed)
  CHARGELEDGER_OCPP_PASSWORD_CHECKS       ocpp_password_checks  number of cores (Argon2 checks at once, each 19 MiB)
  CHARGELEDGER_OCPP_PASSWORD_CACHE_SECS   ocpp_password_cache_secs  300 (a verified charger password is accepted again without Argon2; 0: off)
  CHARGELEDGER_OCPP_FAILURE_WINDOW_SECS   ocpp_failure_window_secs  60 (window of the failed-handshake limits)
  CHARGELEDGER_OCPP_FAILURES_PER_ADDRESS  ocpp_failures_per_address  30 (failed handshakes per source address, IPv6 /64, then 429; 0: off)
  CHARGELEDGER_OCPP_FAILURES_PER_ID       ocpp_failures_per_id  10 (wrong or missing passwords per charger id, then 429; 0: off)
  CHARGELEDGER_OCPP_FRAMES_PER_SEC        ocpp_frames_per_sec   10 (sustained frames per connection; beyond: CALLERROR; 0: off)
  CHARGELEDGER_OCPP_FRAME_BURST           ocpp_frame_burst      100 (frames allowed in a burst above that rate)
  CHARGELEDGER_OCPP_FLOOD_CLOSE_AFTER     ocpp_flood_close_after  200 (frames over the rate in one interval that close the connection, 1008)
  CHARGELEDGER_OCPP_REJECTIONS_LOGGED     ocpp_rejections_logged  20 (refused frames recorded one by one per interval; the rest summarized)
  CHARGELEDGER_OCPP_REJECTION_INTERVAL_SECS ocpp_rejection_interval_secs  60 (the interval of the two above)
  CHARGELEDGER_PAYMENTS_GATEWAY           payments_gateway      simulator (or pagarme)
  CHARGELEDGER_PAGARME_BASE_URL           pagarme_base_url      https://api.pagar.me/core/v5
  CHARGELEDGER_PAGARME_SECRET_KEY         pagarme_secret_key    none; sk_... (required with pagarme)
  CHARGELEDGER_PAGARME_TIMEOUT_MS         pagarme_timeout_ms    10000 (a timeout leaves the intent processing, to reconcile)
  CHARGELEDGER_PAGARME_WEBHOOK_USER       pagarme_webhook_user  none; HTTP Basic user required on /v1/gateways/pagarme/webhooks
  CHARGELEDGER_PAGARME_WEBHOOK_PASSWORD   pagarme_webhook_password  its password
  CHARGELEDGER_PAGARME_WEBHOOK_PUBLIC_KEYS pagarme_webhook_public_keys  none; PEM file of RSA public keys for X-Webhook-Asymmetric-Signature
  CHARGELEDGER_PIX_EXPIRES_SECS           pix_expires_secs      1800
  CHARGELEDGER_SIMULATOR_PIX_AUTOPAY_SECS simulator_pix_autopay_secs  20 (the simulator counts a PIX code paid after this)
  CHARGELEDGER_RECONCILE_INTERVAL_MS      reconcile_interval_ms 5000 (how often intents in processing are looked up)
  CHARGELEDGER_SMTP_URL                   smtp_url              none; smtp://host:port (receipts are not sent without it)
  CHARGELEDGER_SMTP_FROM                  smtp_from             ChargeLedger <recibos@chargeledger.local>
  CHARGELEDGER_SESSION_START_TIMEOUT_SECS session_start_timeout_secs  120 (a charger that has not started by then: the payment is voided)
  CHARGELEDGER_TRUST_CLIENT_TARIFF        trust_client_tariff   false; UNSAFE when true: drivers may start sessions with a tariff they choose
  CHARGELEDGER_QUEUE_RETRY_SCHEDULE_MS    queue_retry_schedule_ms  5000,30000,120000,600000,1800000,3600000,7200000
  CHARGELEDGER_KAFKA_BROKERS              kafka_brokers         none; host:port[,…]: publish the log to Kafka (relay role, and part of serve)
  CHARGELEDGER_KAFKA_TOPIC_PREFIX         kafka_topic_prefix    chargeledger (topics are PREFIX.<stream category>)
  CHARGELEDGER_KAFKA_PARTITIONS           kafka_partitions      6 (for topics the relay creates)
  CHARGELEDGER_KAFKA_REPLICATION          kafka_replication     1 (for topics the relay creates)
  CHARGELEDGER_KAFKA_PROPERTIES           kafka_properties      none; extra librdkafka settings, k=v,k=v (security.protocol, sasl.*)
  CHARGELEDGER_WEBHOOK_TIMEOUT_MS         webhook_timeout_ms    15000 (per delivery attempt)
  CHARGELEDGER_WEBHOOK_RETRY_SCHEDULE_MS  webhook_retry_schedule_ms  5000,300000,1800000,7200000,18000000,36000000,36000000
  CHARGELEDGER_SECRETS_KEY                secrets_key           none: required by api and serve, at least 32 bytes, not the JWT secret;
      key of stored CPMS credentials and request fingerprints (keep it: changing it makes them unreadable)
  CHARGELEDGER_RATE_LIMIT_PER_MIN         rate_limit_per_min    600 per credential (API key, or JWT sub + company); 0 = no limiter
  CHARGELEDGER_RATE_LIMIT_BURST           rate_limit_burst      120 (requests a credential may send at once)
  CHARGELEDGER_RATE_LIMIT_ANON_PER_MIN    rate_limit_anon_per_min  120 per source address without valid credentials
  CHARGELEDGER_RATE_LIMIT_ANON_BURST      rate_limit_anon_burst 60
  CHARGELEDGER_REQUEST_TIMEOUT_MS         request_timeout_ms    90000 (then 503 request-timeout; above 2 × the OCPP call timeout)
  CHARGELEDGER_MAX_BODY_BYTES             max_body_bytes        262144 (larger bodies: 413)
  CHARGELEDGER_HTTP_HEADER_TIMEOUT_MS     http_header_timeout_ms  10000 (a connection without a complete request head is closed)
  CHARGELEDGER_IDEMPOTENCY_TTL_SECS       idempotency_ttl_secs  86400 (stored responses to Idempotency-Keys expire and are pruned)
  CHARGELEDGER_METRICS_ADDR               metrics_addr          none; serve /metrics and /health/detailed on this address only
  CHARGELEDGER_WEBHOOK_ALLOW_PRIVATE      webhook_allow_private false (true lets webhooks reach loopback and private addresses, on any port)
  CHARGELEDGER_WEBHOOK_ALLOWED_PORTS      webhook_allowed_ports 80,443 (ports webhooks may use on other targets; * for any)
  CHARGELEDGER_PUBLICATION_KEY            publication_key       none: a random key per process; >= 32 bytes keying the id-tag pseudonyms on Kafka and in webhooks (set it, and keep it, for stable pseudonyms)
  CHARGELEDGER_LOG                        log                   info (tracing filter, e.g. chargeledger=debug)
  CHARGELEDGER_LOG_FORMAT                 log_format            text (or json)
Precedence: environment over file over defaults.";

/// Runtime configuration of every role.
#[derive(Debug, Clone)]
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
    /// The clock of schedules (tests move it forward).
    pub clock: commands::clock::Clock,
    /// Tracing filter.
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    http_addr: Option<String>,
    jwt_secret: Option<String>,
    jwt_public_key_file: Option<String>,
    db_max_connections: Option<u32>,
    terminal_online_secs: Option<i64>,
    consistency_wait_ms: Option<u64>,
    seal_interval_ms: Option<u64>,
    log: Option<String>,
    log_format: Option<String>,
    ocpp_addr: Option<String>,
    ocpp_auto_register_company: Option<String>,
    ocpp_max_frame_bytes: Option<usize>,
    ocpp_ping_secs: Option<u64>,
    ocpp_call_timeout_ms: Option<u64>,
    ocpp_heartbeat_secs: Option<i64>,
    ocpp_tls_cert: Option<String>,
    ocpp_tls_key: Option<String>,
    ocpp_handshake_timeout_ms: Option<u64>,
    ocpp_max_connections: Option<u64>,
    ocpp_max_pending_handshakes: Option<u64>,
    ocpp_password_checks: Option<u64>,
    ocpp_password_cache_secs: Option<u64>,
    ocpp_failure_window_secs: Option<u64>,
    ocpp_failures_per_address: Option<u32>,
    ocpp_failures_per_id: Option<u32>,
    ocpp_frames_per_sec: Option<u32>,
    ocpp_frame_burst: Option<u32>,
    ocpp_flood_close_after: Option<u32>,
    ocpp_rejections_logged: Option<u32>,
    ocpp_rejection_interval_secs: Option<u64>,
    payments_gateway: Option<String>,
    pagarme_base_url: Option<String>,
    pagarme_secret_key: Option<String>,
    pagarme_timeout_ms: Option<u64>,
    pagarme_webhook_user: Option<String>,
    pagarme_webhook_password: Option<String>,
    pagarme_webhook_public_keys: Option<String>,
    pix_expires_secs: Option<i64>,
    simulator_pix_autopay_secs: Option<u64>,
    reconcile_interval_ms: Option<u64>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    session_start_timeout_secs: Option<u64>,
    trust_client_tariff: Option<bool>,
    queue_retry_schedule_ms: Option<String>,
    kafka_brokers: Option<String>,
    kafka_topic_prefix: Option<String>,
    kafka_partitions: Option<i32>,
    kafka_replication: Option<i32>,
    kafka_properties: Option<String>,
    webhook_timeout_ms: Option<u64>,
    webhook_retry_schedule_ms: Option<String>,
    webhook_allow_private: Option<bool>,
    webhook_allowed_ports: Option<String>,
    publication_key: Option<String>,
    secrets_key: Option<String>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    rate_limit_per_min: Option<u32>,
    rate_limit_burst: Option<u32>,
    rate_limit_anon_per_min: Option<u32>,
    rate_limit_anon_burst: Option<u32>,
    request_timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    http_header_timeout_ms: Option<u64>,
    idempotency_ttl_secs: Option<u64>,
    metrics_addr: Option<String>,
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
    fn defaults() -> Self {
        Self {
            gateway: "simulator".into(),
            pagarme_base_url: "https://api.pagar.me/core/v5".into(),
            pagarme_secret_key: None,
            pagarme_timeout: Duration::from_secs(10),
            webhook_basic: None,
            webhook_public_keys_pem: None,
            pix_expires_secs: 1800,
            simulator_pix_autopay: Duration::from_secs(20),
            reconcile_interval: Duration::from_secs(5),
        }
    }
}

/// A configuration problem, named by setting.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse<T: std::str::FromStr>(name: &str, raw: Option<String>) -> Result<Option<T>, ConfigError> {
    raw.map(|v| v.parse::<T>().map_err(|_| ConfigError(format!("{name}={v:?} is not valid")))).transpose()
}

/// `80,443` → those ports; `*` → any (`None`); absent → 80 and 443.
fn parse_ports(raw: Option<&str>) -> Result<Option<Vec<u16>>, ConfigError> {
    let Some(raw) = raw.map(str::trim) else { return Ok(Some(vec![80, 443])) };
    if raw == "*" {
        return Ok(None);
    }
    let ports: Result<Vec<u16>, _> = raw.split(',').map(|p| p.trim().parse::<u16>()).collect();
    match ports {
        Ok(ports) if !ports.is_empty() && !ports.contains(&0) => Ok(Some(ports)),
        _ => Err(ConfigError(format!(
            "CHARGELEDGER_WEBHOOK_ALLOWED_PORTS={raw:?} must be * or a comma-separated list of ports"
        ))),
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
        let path = file.map(Path::to_path_buf).or_else(|| env("CHARGELEDGER_CONFIG").map(Into::into));
        let f: FileConfig = match &path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
                toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", p.display())))?
            }
            None => FileConfig::default(),
        };
        let limits = LimitsConfig::load(&f)?;
        let ocpp_limits = ocpp_limits::load(&f)?;
        let database_url = env("CHARGELEDGER_DATABASE_URL")
            .or_else(|| env("DATABASE_URL"))
            .or(f.database_url)
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/chargeledger".into());
        let http_addr = parse("CHARGELEDGER_HTTP_ADDR", env("CHARGELEDGER_HTTP_ADDR").or(f.http_addr))?
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let secret = env("CHARGELEDGER_JWT_SECRET").or(f.jwt_secret);
        let key_file = env("CHARGELEDGER_JWT_PUBLIC_KEY_FILE").or(f.jwt_public_key_file);
        let jwt_public_key_pem = key_file
            .map(|p| {
                std::fs::read_to_string(&p)
                    .map_err(|e| ConfigError(format!("CHARGELEDGER_JWT_PUBLIC_KEY_FILE {p}: {e}")))
            })
            .transpose()?;
        let online: i64 = parse("CHARGELEDGER_TERMINAL_ONLINE_SECS", env("CHARGELEDGER_TERMINAL_ONLINE_SECS"))?
            .or(f.terminal_online_secs)
            .unwrap_or(600);
        if online <= 0 {
            return Err(ConfigError("CHARGELEDGER_TERMINAL_ONLINE_SECS must be positive".into()));
        }
        let log_format = env("CHARGELEDGER_LOG_FORMAT").or(f.log_format).unwrap_or_else(|| "text".into());
        if !matches!(log_format.as_str(), "text" | "json") {
            return Err(ConfigError("CHARGELEDGER_LOG_FORMAT must be text or json".into()));
        }
        let mut ocpp = gateways::ocpp::OcppConfig::new(
            parse("CHARGELEDGER_OCPP_ADDR", env("CHARGELEDGER_OCPP_ADDR").or(f.ocpp_addr))?
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
        );
        ocpp.limits = ocpp_limits;
        ocpp.auto_register_company = parse(
            "CHARGELEDGER_OCPP_AUTO_REGISTER_COMPANY",
            env("CHARGELEDGER_OCPP_AUTO_REGISTER_COMPANY").or(f.ocpp_auto_register_company),
        )?;
        if let Some(max) = parse("CHARGELEDGER_OCPP_MAX_FRAME_BYTES", env("CHARGELEDGER_OCPP_MAX_FRAME_BYTES"))?
            .or(f.ocpp_max_frame_bytes)
        {
            ocpp.max_frame_bytes = max;
        }
        if let Some(secs) =
            parse("CHARGELEDGER_OCPP_PING_SECS", env("CHARGELEDGER_OCPP_PING_SECS"))?.or(f.ocpp_ping_secs)
        {
            ocpp.ping_interval = Duration::from_secs(secs.max(1));
        }
        if let Some(ms) = parse("CHARGELEDGER_OCPP_CALL_TIMEOUT_MS", env("CHARGELEDGER_OCPP_CALL_TIMEOUT_MS"))?
            .or(f.ocpp_call_timeout_ms)
        {
            ocpp.call_timeout = Duration::from_millis(ms.max(100));
        }
        if let Some(secs) = parse("CHARGELEDGER_OCPP_HEARTBEAT_SECS", env("CHARGELEDGER_OCPP_HEARTBEAT_SECS"))?
            .or(f.ocpp_heartbeat_secs)
        {
            ocpp.heartbeat_interval_s = secs.max(1);
        }
        match (
            env("CHARGELEDGER_OCPP_TLS_CERT").or(f.ocpp_tls_cert),
            env("CHARGELEDGER_OCPP_TLS_KEY").or(f.ocpp_tls_key),
        ) {
            (Some(cert), Some(key)) => ocpp.tls = Some((cert.into(), key.into())),
            (None, None) => {}
            _ => {
                return Err(ConfigError("CHARGELEDGER_OCPP_TLS_CERT and CHARGELEDGER_OCPP_TLS_KEY go together".into()))
            }
        }
        let mut payments = PaymentsConfig::defaults();
        if let Some(g) = env("CHARGELEDGER_PAYMENTS_GATEWAY").or(f.payments_gateway) {
            if !matches!(g.as_str(), "simulator" | "pagarme") {
                return Err(ConfigError("CHARGELEDGER_PAYMENTS_GATEWAY must be simulator or pagarme".into()));
            }
            payments.gateway = g;
        }
        if let Some(url) = env("CHARGELEDGER_PAGARME_BASE_URL").or(f.pagarme_base_url) {
            payments.pagarme_base_url = url;
        }
        payments.pagarme_secret_key =
            env("CHARGELEDGER_PAGARME_SECRET_KEY").or(f.pagarme_secret_key).map(SecretString::from);
        if payments.gateway == "pagarme" && payments.pagarme_secret_key.is_none() {
            return Err(ConfigError("CHARGELEDGER_PAGARME_SECRET_KEY is required with the pagarme gateway".into()));
        }
        if let Some(ms) =
            parse("CHARGELEDGER_PAGARME_TIMEOUT_MS", env("CHARGELEDGER_PAGARME_TIMEOUT_MS"))?.or(f.pagarme_timeout_ms)
        {
            payments.pagarme_timeout = Duration::from_millis(ms.max(100));
        }
        let user = env("CHARGELEDGER_PAGARME_WEBHOOK_USER").or(f.pagarme_webhook_user);
        let password = env("CHARGELEDGER_PAGARME_WEBHOOK_PASSWORD").or(f.pagarme_webhook_password);
        payments.webhook_basic = match (user, password) {
            (Some(u), Some(p)) => Some((u, SecretString::from(p))),
            (None, None) => None,
            _ => return Err(ConfigError("CHARGELEDGER_PAGARME_WEBHOOK_USER and _PASSWORD go together".into())),
        };
        payments.webhook_public_keys_pem = env("CHARGELEDGER_PAGARME_WEBHOOK_PUBLIC_KEYS")
            .or(f.pagarme_webhook_public_keys)
            .map(|p| {
                std::fs::read_to_string(&p)
                    .map_err(|e| ConfigError(format!("CHARGELEDGER_PAGARME_WEBHOOK_PUBLIC_KEYS {p}: {e}")))
            })
            .transpose()?;
        if let Some(s) =
            parse("CHARGELEDGER_PIX_EXPIRES_SECS", env("CHARGELEDGER_PIX_EXPIRES_SECS"))?.or(f.pix_expires_secs)
        {
            payments.pix_expires_secs = s.clamp(60, 7 * 86_400);
        }
        if let Some(s) =
            parse("CHARGELEDGER_SIMULATOR_PIX_AUTOPAY_SECS", env("CHARGELEDGER_SIMULATOR_PIX_AUTOPAY_SECS"))?
                .or(f.simulator_pix_autopay_secs)
        {
            payments.simulator_pix_autopay = Duration::from_secs(s);
        }
        if let Some(ms) = parse("CHARGELEDGER_RECONCILE_INTERVAL_MS", env("CHARGELEDGER_RECONCILE_INTERVAL_MS"))?
            .or(f.reconcile_interval_ms)
        {
            payments.reconcile_interval = Duration::from_millis(ms.max(50));
        }
        let mut sessions = commands::sessions::SessionConfig::default();
        if let Some(secs) =
            parse("CHARGELEDGER_SESSION_START_TIMEOUT_SECS", env("CHARGELEDGER_SESSION_START_TIMEOUT_SECS"))?
                .or(f.session_start_timeout_secs)
        {
            sessions.start_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(list) = env("CHARGELEDGER_QUEUE_RETRY_SCHEDULE_MS").or(f.queue_retry_schedule_ms) {
            let parsed: Result<Vec<u64>, _> = list.split(',').map(|v| v.trim().parse::<u64>()).collect();
            match parsed {
                Ok(ms) if !ms.is_empty() => {
                    sessions.retry_schedule = ms.into_iter().map(Duration::from_millis).collect()
                }
                _ => {
                    return Err(ConfigError(
                        "CHARGELEDGER_QUEUE_RETRY_SCHEDULE_MS must be a comma-separated list of milliseconds".into(),
                    ))
                }
            }
        }
        sessions.command_timeout_ms = ocpp.call_timeout.as_millis() as i64;
        let trust_client_tariff = parse("CHARGELEDGER_TRUST_CLIENT_TARIFF", env("CHARGELEDGER_TRUST_CLIENT_TARIFF"))?
            .or(f.trust_client_tariff)
            .unwrap_or(false);
        let kafka = match env("CHARGELEDGER_KAFKA_BROKERS").or(f.kafka_brokers) {
            None => None,
            Some(brokers) => {
                let mut k = gateways::kafka::KafkaConfig::new(brokers);
                if let Some(prefix) = env("CHARGELEDGER_KAFKA_TOPIC_PREFIX").or(f.kafka_topic_prefix) {
                    let valid = !prefix.is_empty()
                        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                    if !valid {
                        return Err(ConfigError("CHARGELEDGER_KAFKA_TOPIC_PREFIX may hold only [a-zA-Z0-9._-]".into()));
                    }
                    k.topic_prefix = prefix;
                }
                if let Some(p) =
                    parse("CHARGELEDGER_KAFKA_PARTITIONS", env("CHARGELEDGER_KAFKA_PARTITIONS"))?.or(f.kafka_partitions)
                {
                    k.partitions = p.max(1);
                }
                if let Some(r) = parse("CHARGELEDGER_KAFKA_REPLICATION", env("CHARGELEDGER_KAFKA_REPLICATION"))?
                    .or(f.kafka_replication)
                {
                    k.replication = r.max(1);
                }
                if let Some(props) = env("CHARGELEDGER_KAFKA_PROPERTIES").or(f.kafka_properties) {
                    for pair in props.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let Some((key, value)) = pair.split_once('=') else {
                            return Err(ConfigError(format!(
                                "CHARGELEDGER_KAFKA_PROPERTIES: {pair:?} is not key=value"
                            )));
                        };
                        k.extra.push((key.trim().to_owned(), value.trim().to_owned()));
                    }
                }
                Some(k)
            }
        };
        let mut webhooks = commands::webhooks::WebhookConfig::default();
        if let Some(ms) =
            parse("CHARGELEDGER_WEBHOOK_TIMEOUT_MS", env("CHARGELEDGER_WEBHOOK_TIMEOUT_MS"))?.or(f.webhook_timeout_ms)
        {
            webhooks.timeout = Duration::from_millis(ms.clamp(100, 60_000));
        }
        if let Some(list) = env("CHARGELEDGER_WEBHOOK_RETRY_SCHEDULE_MS").or(f.webhook_retry_schedule_ms) {
            let parsed: Result<Vec<u64>, _> = list.split(',').map(|v| v.trim().parse::<u64>()).collect();
            match parsed {
                Ok(ms) if !ms.is_empty() => webhooks.schedule = ms.into_iter().map(Duration::from_millis).collect(),
                _ => {
                    return Err(ConfigError(
                        "CHARGELEDGER_WEBHOOK_RETRY_SCHEDULE_MS must be a comma-separated list of milliseconds".into(),
                    ))
                }
            }
        }
        let webhook_allow_private =
            parse("CHARGELEDGER_WEBHOOK_ALLOW_PRIVATE", env("CHARGELEDGER_WEBHOOK_ALLOW_PRIVATE"))?
                .or(f.webhook_allow_private)
                .unwrap_or(false);
        let webhook_allowed_ports =
            parse_ports(env("CHARGELEDGER_WEBHOOK_ALLOWED_PORTS").or(f.webhook_allowed_ports).as_deref())?;
        // Pseudonyms on Kafka and in webhooks (ADR 0018): one key for both, never the JWT secret.
        let redactor = match env("CHARGELEDGER_PUBLICATION_KEY").or(f.publication_key) {
            Some(key) if key.len() >= 32 => commands::publication::Redactor::new(key.as_bytes()),
            Some(_) => return Err(ConfigError("CHARGELEDGER_PUBLICATION_KEY must be at least 32 bytes".into())),
            None => commands::publication::Redactor::random(),
        };
        webhooks.redactor = redactor.clone();
        let kafka = kafka.map(|k| gateways::kafka::KafkaConfig { redactor, ..k });
        Ok(Self {
            webhook_allowed_ports,
            secrets_key: env("CHARGELEDGER_SECRETS_KEY").or(f.secrets_key).map(SecretString::from),
            jwt_issuer: env("CHARGELEDGER_JWT_ISSUER").or(f.jwt_issuer),
            jwt_audience: env("CHARGELEDGER_JWT_AUDIENCE").or(f.jwt_audience),
            limits,
            webhooks,
            webhook_allow_private,
            clock: commands::clock::Clock::default(),
            kafka,
            smtp_url: env("CHARGELEDGER_SMTP_URL").or(f.smtp_url).map(SecretString::from),
            smtp_from: env("CHARGELEDGER_SMTP_FROM")
                .or(f.smtp_from)
                .unwrap_or_else(|| "ChargeLedger <recibos@chargeledger.local>".into()),
            sessions,
            trust_client_tariff,
            payments,
            ocpp,
            database_url,
            http_addr,
            jwt_secret: SecretString::from(secret.unwrap_or_default()),
            jwt_public_key_pem,
            db_max_connections: parse("CHARGELEDGER_DB_MAX_CONNECTIONS", env("CHARGELEDGER_DB_MAX_CONNECTIONS"))?
                .or(f.db_max_connections)
                .unwrap_or(16),
            terminal_online: chrono::Duration::seconds(online),
            consistency_wait: Duration::from_millis(
                parse("CHARGELEDGER_CONSISTENCY_WAIT_MS", env("CHARGELEDGER_CONSISTENCY_WAIT_MS"))?
                    .or(f.consistency_wait_ms)
                    .unwrap_or(2000),
            ),
            seal_interval: Duration::from_millis(
                parse("CHARGELEDGER_SEAL_INTERVAL_MS", env("CHARGELEDGER_SEAL_INTERVAL_MS"))?
                    .or(f.seal_interval_ms)
                    .unwrap_or(1000),
            ),
            log: env("CHARGELEDGER_LOG").or(f.log).unwrap_or_else(|| "info".into()),
            log_format,
        })
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
