//! Configuration: defaults, then an optional TOML file, then the environment.

use std::{net::SocketAddr, path::Path, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

/// The development JWT secret used when none is configured. `serve` warns loudly.
pub const DEV_JWT_SECRET: &str = "chargeledger-development-secret-change-me";

/// Every setting, for `--help`.
pub const SETTINGS_HELP: &str = "\
SETTINGS (environment variable, file key, default):
  CHARGELEDGER_CONFIG                     path of an optional TOML file with the keys below
  CHARGELEDGER_DATABASE_URL               database_url          postgres://postgres@127.0.0.1:5432/chargeledger
      (falls back to DATABASE_URL)
  CHARGELEDGER_HTTP_ADDR                  http_addr             127.0.0.1:8080
  CHARGELEDGER_JWT_SECRET                 jwt_secret            a development secret (set it in production)
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
    /// HS256 secret.
    pub jwt_secret: SecretString,
    /// Whether `jwt_secret` is the development default.
    pub jwt_secret_is_default: bool,
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

impl Config {
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
        let database_url = env("CHARGELEDGER_DATABASE_URL")
            .or_else(|| env("DATABASE_URL"))
            .or(f.database_url)
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/chargeledger".into());
        let http_addr = parse("CHARGELEDGER_HTTP_ADDR", env("CHARGELEDGER_HTTP_ADDR").or(f.http_addr))?
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let secret = env("CHARGELEDGER_JWT_SECRET").or(f.jwt_secret);
        let jwt_secret_is_default = secret.is_none();
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
        Ok(Self {
            ocpp,
            database_url,
            http_addr,
            jwt_secret: SecretString::from(secret.unwrap_or_else(|| DEV_JWT_SECRET.into())),
            jwt_secret_is_default,
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

    /// A configuration for tests: the given database, port 0, a known secret.
    pub fn for_tests(database_url: String) -> Self {
        Self {
            database_url,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: SecretString::from("test-secret"),
            jwt_secret_is_default: false,
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
            log: "warn".into(),
            log_format: "text".into(),
        }
    }
}
