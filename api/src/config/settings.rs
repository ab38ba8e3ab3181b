//! Every setting, declared once: its file key, environment variable, type,
//! default and help line. The [`Settings`] struct, the defaults layer, the
//! environment layer, the errors and `--help` are all generated from the table
//! at the bottom, so they cannot disagree.

use super::{
    layers::Layers,
    values::{
        AtLeast, DatabaseUrl, Gateway, Key, LogFormat, Millis, Ports, Properties, Secret, SettingValue, TopicPrefix,
    },
    ConfigError,
};
use std::net::SocketAddr;
use uuid::Uuid;

/// One row of the table: what `--help`, the layers and the errors know of a setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Key in the TOML file (the field of `Settings`).
    pub key: &'static str,
    /// Environment variable (`CHARGELEDGER_` + the key in upper case).
    pub env: &'static str,
    /// A second variable read when the first is unset (`DATABASE_URL`).
    pub alias: Option<&'static str>,
    /// The default, as text read like any other layer; `None`: unset.
    pub default: Option<&'static str>,
    /// What it does (its doc comment).
    pub help: &'static str,
    /// Never printed: not in `Debug`, not in errors.
    pub secret: bool,
}

impl Setting {
    /// The row of a file key.
    pub fn by_key(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }
}

/// The path of the optional TOML file (not itself a setting of the file).
pub const CONFIG_FILE_ENV: &str = "CHARGELEDGER_CONFIG";

/// `--help`'s list of every setting, generated from the table.
pub fn settings_help() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "SETTINGS: defaults, then an optional TOML file, then the environment (an empty variable counts as unset).\n\
         File keys are the variable names in lower case without CHARGELEDGER_, e.g. http_addr = \"0.0.0.0:8080\".\n\n",
    );
    let _ = writeln!(
        out,
        "  {CONFIG_FILE_ENV} (or --config FILE)\n          Path of an optional TOML file with the keys below."
    );
    for s in SETTINGS {
        let alias = s.alias.map(|a| format!(" (or {a})")).unwrap_or_default();
        let default = s.default.unwrap_or("none");
        let secret = if s.secret { " [secret]" } else { "" };
        let _ = writeln!(out, "  {}{alias}  (file: {})  [default: {default}]{secret}", s.env, s.key);
        let _ = writeln!(out, "          {}", s.help.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out.push_str("Precedence: environment over file over defaults.");
    out
}

/// Generates [`Settings`], [`SETTINGS`] and `Settings::read` from one table.
/// A row with `= "default"` is a plain field; a row without is an `Option`.
macro_rules! settings {
    (@field $ty:ty) => { Option<$ty> };
    (@field $ty:ty = $default:literal) => { $ty };
    (@read $layers:ident, $key:ident, $ty:ty) => { $layers.get::<$ty>(stringify!($key))? };
    (@read $layers:ident, $key:ident, $ty:ty = $default:literal) => { $layers.require::<$ty>(stringify!($key))? };
    (@opt) => { None };
    (@opt $value:literal) => { Some($value) };
    ($( $(#[doc = $doc:literal])+ $key:ident: $ty:ty $(= $default:literal)?, $env:literal $(or $alias:literal)?; )*) => {
        /// Every setting, read from the layers; [`super::Config`] is built from it.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $key: settings!(@field $ty $(= $default)?), )*
        }

        /// The table of every setting, in `--help` order.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                key: stringify!($key),
                env: $env,
                alias: settings!(@opt $($alias)?),
                default: settings!(@opt $($default)?),
                help: concat!($($doc),+),
                secret: <$ty as SettingValue>::SECRET,
            },
        )*];

        impl Settings {
            /// Reads every setting from the merged layers.
            pub(super) fn read(layers: &Layers) -> Result<Self, ConfigError> {
                Ok(Self { $( $key: settings!(@read layers, $key, $ty $(= $default)?), )* })
            }
        }
    };
}

settings! {
    /// Postgres URL of the event log and read models (its password is never printed).
    database_url: DatabaseUrl = "postgres://postgres@127.0.0.1:5432/chargeledger",
        "CHARGELEDGER_DATABASE_URL" or "DATABASE_URL";
    /// HTTP listen address.
    http_addr: SocketAddr = "127.0.0.1:8080", "CHARGELEDGER_HTTP_ADDR";
    /// HS256 secret; required by every role and `token`, at least 32 bytes, no published default
    /// (./scripts/run.sh generates one into .chargeledger/secrets.env).
    jwt_secret: Secret, "CHARGELEDGER_JWT_SECRET";
    /// When set, tokens must carry this `iss` (and `token` sets it).
    jwt_issuer: String, "CHARGELEDGER_JWT_ISSUER";
    /// When set, tokens must carry this `aud` (and `token` sets it).
    jwt_audience: String, "CHARGELEDGER_JWT_AUDIENCE";
    /// PEM file of an RSA public key: RS256 tokens are then accepted.
    jwt_public_key_file: String, "CHARGELEDGER_JWT_PUBLIC_KEY_FILE";
    /// Database pool size.
    db_max_connections: u32 = "16", "CHARGELEDGER_DB_MAX_CONNECTIONS";
    /// A terminal seen within this many seconds is online.
    terminal_online_secs: AtLeast<1> = "600", "CHARGELEDGER_TERMINAL_ONLINE_SECS";
    /// How long a write waits for its read model before answering.
    consistency_wait_ms: u64 = "2000", "CHARGELEDGER_CONSISTENCY_WAIT_MS";
    /// Cadence of the log sealer.
    seal_interval_ms: u64 = "1000", "CHARGELEDGER_SEAL_INTERVAL_MS";
    /// OCPP listen address (ws://HOST:PORT/ocpp/{chargePointId}).
    ocpp_addr: SocketAddr = "127.0.0.1:9000", "CHARGELEDGER_OCPP_ADDR";
    /// A company uuid: unknown chargers are registered to it (unset: refused).
    ocpp_auto_register_company: Uuid, "CHARGELEDGER_OCPP_AUTO_REGISTER_COMPANY";
    /// A larger frame closes the connection (1009).
    ocpp_max_frame_bytes: usize = "65536", "CHARGELEDGER_OCPP_MAX_FRAME_BYTES";
    /// WebSocket ping cadence; two silent intervals close the connection.
    ocpp_ping_secs: u64 = "30", "CHARGELEDGER_OCPP_PING_SECS";
    /// How long a command waits for the charger (REST commands answer 504 after it).
    ocpp_call_timeout_ms: u64 = "30000", "CHARGELEDGER_OCPP_CALL_TIMEOUT_MS";
    /// Heartbeat interval told to chargers at boot.
    ocpp_heartbeat_secs: i64 = "300", "CHARGELEDGER_OCPP_HEARTBEAT_SECS";
    /// PEM certificate chain: the gateway serves wss:// (security profile 2); needs the key below.
    ocpp_tls_cert: String, "CHARGELEDGER_OCPP_TLS_CERT";
    /// PEM private key of that certificate.
    ocpp_tls_key: String, "CHARGELEDGER_OCPP_TLS_KEY";
    /// TCP accept → TLS → upgrade done within this, or the socket is closed.
    ocpp_handshake_timeout_ms: u64 = "10000", "CHARGELEDGER_OCPP_HANDSHAKE_TIMEOUT_MS";
    /// Open sockets; beyond it new ones are closed at once.
    ocpp_max_connections: u64 = "20000", "CHARGELEDGER_OCPP_MAX_CONNECTIONS";
    /// Sockets still handshaking; beyond it new ones are closed.
    ocpp_max_pending_handshakes: u64 = "1000", "CHARGELEDGER_OCPP_MAX_PENDING_HANDSHAKES";
    /// Argon2 checks at once, each 19 MiB (unset: the number of cores).
    ocpp_password_checks: u64, "CHARGELEDGER_OCPP_PASSWORD_CHECKS";
    /// A verified charger password is accepted again for this long without Argon2 (0: off).
    ocpp_password_cache_secs: u64 = "300", "CHARGELEDGER_OCPP_PASSWORD_CACHE_SECS";
    /// Window of the failed-handshake limits.
    ocpp_failure_window_secs: u64 = "60", "CHARGELEDGER_OCPP_FAILURE_WINDOW_SECS";
    /// Failed handshakes per source address (IPv6 /64), then 429 (0: off).
    ocpp_failures_per_address: u32 = "30", "CHARGELEDGER_OCPP_FAILURES_PER_ADDRESS";
    /// Wrong or missing passwords per charger id, then 429 (0: off).
    ocpp_failures_per_id: u32 = "10", "CHARGELEDGER_OCPP_FAILURES_PER_ID";
    /// Sustained frames per second per connection; beyond: CALLERROR (0: off).
    ocpp_frames_per_sec: u32 = "10", "CHARGELEDGER_OCPP_FRAMES_PER_SEC";
    /// Frames allowed in a burst above that rate.
    ocpp_frame_burst: u32 = "100", "CHARGELEDGER_OCPP_FRAME_BURST";
    /// Frames over the rate in one interval that close the connection (1008).
    ocpp_flood_close_after: u32 = "200", "CHARGELEDGER_OCPP_FLOOD_CLOSE_AFTER";
    /// Refused frames recorded one by one per interval; the rest are summarized.
    ocpp_rejections_logged: u32 = "20", "CHARGELEDGER_OCPP_REJECTIONS_LOGGED";
    /// The interval of the two above.
    ocpp_rejection_interval_secs: u64 = "60", "CHARGELEDGER_OCPP_REJECTION_INTERVAL_SECS";
    /// Payment gateway: simulator or pagarme.
    payments_gateway: Gateway = "simulator", "CHARGELEDGER_PAYMENTS_GATEWAY";
    /// Pagar.me base URL.
    pagarme_base_url: String = "https://api.pagar.me/core/v5", "CHARGELEDGER_PAGARME_BASE_URL";
    /// Pagar.me secret key, sk_... (required with pagarme).
    pagarme_secret_key: Secret, "CHARGELEDGER_PAGARME_SECRET_KEY";
    /// Pagar.me request timeout (a timeout leaves the intent processing, to reconcile).
    pagarme_timeout_ms: u64 = "10000", "CHARGELEDGER_PAGARME_TIMEOUT_MS";
    /// HTTP Basic user required on /v1/gateways/pagarme/webhooks (with the password below).
    pagarme_webhook_user: String, "CHARGELEDGER_PAGARME_WEBHOOK_USER";
    /// Its password.
    pagarme_webhook_password: Secret, "CHARGELEDGER_PAGARME_WEBHOOK_PASSWORD";
    /// PEM file of RSA public keys for X-Webhook-Asymmetric-Signature.
    pagarme_webhook_public_keys: String, "CHARGELEDGER_PAGARME_WEBHOOK_PUBLIC_KEYS";
    /// PIX code validity in seconds (60 s to 7 days).
    pix_expires_secs: i64 = "1800", "CHARGELEDGER_PIX_EXPIRES_SECS";
    /// The simulator counts a PIX code paid after this.
    simulator_pix_autopay_secs: u64 = "20", "CHARGELEDGER_SIMULATOR_PIX_AUTOPAY_SECS";
    /// How often intents in processing are looked up.
    reconcile_interval_ms: u64 = "5000", "CHARGELEDGER_RECONCILE_INTERVAL_MS";
    /// smtp://host:port of receipts (they wait in their queue without it).
    smtp_url: Secret, "CHARGELEDGER_SMTP_URL";
    /// Sender of receipts.
    smtp_from: String = "ChargeLedger <recibos@chargeledger.local>", "CHARGELEDGER_SMTP_FROM";
    /// A charger that has not started by then: the payment is voided.
    session_start_timeout_secs: u64 = "120", "CHARGELEDGER_SESSION_START_TIMEOUT_SECS";
    /// UNSAFE when true: drivers may start sessions with a tariff they choose.
    trust_client_tariff: bool = "false", "CHARGELEDGER_TRUST_CLIENT_TARIFF";
    /// Delays between attempts of the settlement, refund and receipt queues.
    queue_retry_schedule_ms: Millis = "5000,30000,120000,600000,1800000,3600000,7200000",
        "CHARGELEDGER_QUEUE_RETRY_SCHEDULE_MS";
    /// host:port[,…]: publish the log to Kafka (relay role, and part of serve).
    kafka_brokers: String, "CHARGELEDGER_KAFKA_BROKERS";
    /// Topics are PREFIX.<stream category>.
    kafka_topic_prefix: TopicPrefix = "chargeledger", "CHARGELEDGER_KAFKA_TOPIC_PREFIX";
    /// Partitions of the topics the relay creates.
    kafka_partitions: i32 = "6", "CHARGELEDGER_KAFKA_PARTITIONS";
    /// Replication factor of the topics the relay creates.
    kafka_replication: i32 = "1", "CHARGELEDGER_KAFKA_REPLICATION";
    /// Extra librdkafka settings, k=v,k=v (security.protocol, sasl.*).
    kafka_properties: Properties, "CHARGELEDGER_KAFKA_PROPERTIES";
    /// Timeout of one webhook delivery attempt (100 ms to 60 s).
    webhook_timeout_ms: u64 = "15000", "CHARGELEDGER_WEBHOOK_TIMEOUT_MS";
    /// Delays before each webhook retry; after the last, the delivery is given up.
    webhook_retry_schedule_ms: Millis = "5000,300000,1800000,7200000,18000000,36000000,36000000",
        "CHARGELEDGER_WEBHOOK_RETRY_SCHEDULE_MS";
    /// Key of stored CPMS credentials and request fingerprints; required by api and serve, at least
    /// 32 bytes, not the JWT secret (keep it: changing it makes them unreadable).
    secrets_key: Secret, "CHARGELEDGER_SECRETS_KEY";
    /// Requests per minute per credential (API key, or JWT sub + company); 0: no limiter.
    rate_limit_per_min: u32 = "600", "CHARGELEDGER_RATE_LIMIT_PER_MIN";
    /// Requests a credential may send at once.
    rate_limit_burst: u32 = "120", "CHARGELEDGER_RATE_LIMIT_BURST";
    /// Requests per minute per source address without valid credentials.
    rate_limit_anon_per_min: u32 = "120", "CHARGELEDGER_RATE_LIMIT_ANON_PER_MIN";
    /// Requests such an address may send at once.
    rate_limit_anon_burst: u32 = "60", "CHARGELEDGER_RATE_LIMIT_ANON_BURST";
    /// Then 503 request-timeout; keep it above 2 × the OCPP call timeout.
    request_timeout_ms: u64 = "90000", "CHARGELEDGER_REQUEST_TIMEOUT_MS";
    /// Larger bodies: 413 (at least 1024).
    max_body_bytes: AtLeast<1024> = "262144", "CHARGELEDGER_MAX_BODY_BYTES";
    /// A connection without a complete request head within this is closed.
    http_header_timeout_ms: u64 = "10000", "CHARGELEDGER_HTTP_HEADER_TIMEOUT_MS";
    /// Stored responses to Idempotency-Keys expire after this and are pruned.
    idempotency_ttl_secs: u64 = "86400", "CHARGELEDGER_IDEMPOTENCY_TTL_SECS";
    /// Serve /metrics and /health/detailed on this address only (unset: on the API port).
    metrics_addr: SocketAddr, "CHARGELEDGER_METRICS_ADDR";
    /// true lets webhooks reach loopback and private addresses, on any port.
    webhook_allow_private: bool = "false", "CHARGELEDGER_WEBHOOK_ALLOW_PRIVATE";
    /// Ports webhooks may use on other targets; * for any.
    webhook_allowed_ports: Ports = "80,443", "CHARGELEDGER_WEBHOOK_ALLOWED_PORTS";
    /// At least 32 bytes keying the id-tag pseudonyms on Kafka and in webhooks (unset: a random key
    /// per process; set it, the same on every role, and keep it, for stable pseudonyms).
    publication_key: Key, "CHARGELEDGER_PUBLICATION_KEY";
    /// Tracing filter, e.g. chargeledger=debug.
    log: String = "info", "CHARGELEDGER_LOG";
    /// Log format: text or json.
    log_format: LogFormat = "text", "CHARGELEDGER_LOG_FORMAT";
}
