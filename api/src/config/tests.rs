//! The loader: defaults, layering, errors, secrets in `Debug`, `--help`.
#![allow(clippy::unwrap_used)]

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::ExposeSecret;

use super::*;

/// `load_with` over a map instead of the process environment.
fn load(file: Option<&Path>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::load_with(file, &|name| env.get(name).cloned())
}

/// A TOML file with `text`, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("chargeledger-config-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn error(file: Option<&Path>, env: &[(&str, &str)]) -> String {
    load(file, env).unwrap_err().to_string()
}

#[test]
fn the_table_follows_the_documented_names() {
    let mut keys = std::collections::HashSet::new();
    for s in SETTINGS {
        assert!(keys.insert(s.key), "{} is declared twice", s.key);
        assert_eq!(s.env, format!("CHARGELEDGER_{}", s.key.to_uppercase()), "the variable of {}", s.key);
        assert!(!s.help.trim().is_empty(), "{} has no help line", s.key);
    }
    assert_eq!(SETTINGS.len(), 68);
}

#[test]
fn defaults_are_those_documented_and_those_of_the_parts() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.database_url, "postgres://postgres@127.0.0.1:5432/chargeledger");
    assert_eq!(c.http_addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert!(c.jwt_secret.expose_secret().is_empty() && c.secrets_key.is_none());
    assert_eq!((c.db_max_connections, c.terminal_online), (16, chrono::Duration::seconds(600)));
    assert_eq!((c.consistency_wait, c.seal_interval), (Duration::from_secs(2), Duration::from_secs(1)));
    assert_eq!((c.log.as_str(), c.log_format.as_str(), c.trust_client_tariff), ("info", "text", false));
    assert_eq!((c.webhook_allow_private, c.webhook_allowed_ports.clone()), (false, Some(vec![80, 443])));
    assert!(c.kafka.is_none() && c.smtp_url.is_none() && c.jwt_public_key_pem.is_none());
    assert_eq!(c.ocpp.addr, SocketAddr::from(([127, 0, 0, 1], 9000)));
    // The parts' own defaults (what `for_tests` and the benches start from) agree with the table.
    let ocpp = gateways::ocpp::OcppConfig::new(c.ocpp.addr);
    assert_eq!(format!("{:?}", c.ocpp.limits), format!("{:?}", ocpp.limits));
    assert_eq!(
        (c.ocpp.max_frame_bytes, c.ocpp.ping_interval, c.ocpp.call_timeout, c.ocpp.heartbeat_interval_s),
        (ocpp.max_frame_bytes, ocpp.ping_interval, ocpp.call_timeout, ocpp.heartbeat_interval_s)
    );
    let sessions = commands::sessions::SessionConfig::default();
    assert_eq!(format!("{:?}", c.sessions), format!("{sessions:?}"));
    let webhooks = commands::webhooks::WebhookConfig::default();
    assert_eq!((c.webhooks.timeout, &c.webhooks.schedule), (webhooks.timeout, &webhooks.schedule));
    let kafka = load(None, &[("CHARGELEDGER_KAFKA_BROKERS", "k:9092")]).unwrap().kafka.unwrap();
    let parts = gateways::kafka::KafkaConfig::new("k:9092");
    assert_eq!(
        (&kafka.topic_prefix, kafka.partitions, kafka.replication, &kafka.extra),
        (&parts.topic_prefix, parts.partitions, parts.replication, &parts.extra)
    );
    let p = &c.payments;
    assert_eq!((p.gateway.as_str(), p.pagarme_base_url.as_str()), ("simulator", "https://api.pagar.me/core/v5"));
    assert_eq!((p.pagarme_timeout, p.pix_expires_secs), (Duration::from_secs(10), 1800));
    assert_eq!((p.simulator_pix_autopay, p.reconcile_interval), (Duration::from_secs(20), Duration::from_secs(5)));
    let l = &c.limits;
    assert_eq!((l.rate_per_min, l.rate_burst, l.anon_rate_per_min, l.anon_burst), (600, 120, 120, 60));
    assert_eq!((l.request_timeout, l.max_body_bytes), (Duration::from_secs(90), 262_144));
    assert_eq!((l.header_read_timeout, l.idempotency_ttl), (Duration::from_secs(10), Duration::from_secs(86_400)));
}

#[test]
fn the_environment_wins_over_the_file_which_wins_over_the_defaults() {
    let file = TempFile::new(
        "http_addr = \"0.0.0.0:1\"\ndb_max_connections = 3\ntrust_client_tariff = true\n\
         database_url = \"postgres://file/db\"\nocpp_ping_secs = 0\n",
    );
    let c = load(Some(&file.0), &[("CHARGELEDGER_HTTP_ADDR", "127.0.0.1:2"), ("CHARGELEDGER_DB_MAX_CONNECTIONS", "")])
        .unwrap();
    assert_eq!(c.http_addr, SocketAddr::from(([127, 0, 0, 1], 2)), "environment over file");
    assert_eq!(c.db_max_connections, 3, "an empty variable is unset: the file's value stands");
    assert!(c.trust_client_tariff, "a TOML boolean");
    assert_eq!(c.ocpp.ping_interval, Duration::from_secs(1), "the bounds apply to every layer");
    assert_eq!(c.seal_interval, Duration::from_secs(1), "neither: the default");
    // The file named by CHARGELEDGER_CONFIG; DATABASE_URL under CHARGELEDGER_DATABASE_URL, over the file.
    let path = file.0.to_str().unwrap();
    assert_eq!(load(None, &[("CHARGELEDGER_CONFIG", path)]).unwrap().database_url, "postgres://file/db");
    let alias = [("CHARGELEDGER_CONFIG", path), ("DATABASE_URL", "postgres://alias/db")];
    assert_eq!(load(None, &alias).unwrap().database_url, "postgres://alias/db");
    let both = [("DATABASE_URL", "postgres://alias/db"), ("CHARGELEDGER_DATABASE_URL", "postgres://own/db")];
    assert_eq!(load(None, &both).unwrap().database_url, "postgres://own/db");
}

#[test]
fn values_read_as_they_always_did() {
    let c = load(
        None,
        &[
            ("CHARGELEDGER_QUEUE_RETRY_SCHEDULE_MS", "1000, 2000"),
            ("CHARGELEDGER_WEBHOOK_ALLOWED_PORTS", "*"),
            ("CHARGELEDGER_WEBHOOK_TIMEOUT_MS", "1"),
            ("CHARGELEDGER_KAFKA_BROKERS", "a:1,b:2"),
            ("CHARGELEDGER_KAFKA_PROPERTIES", "security.protocol=SASL_SSL, sasl.mechanism = PLAIN"),
            ("CHARGELEDGER_PIX_EXPIRES_SECS", "5"),
            ("CHARGELEDGER_OCPP_PASSWORD_CHECKS", "1000"),
            ("CHARGELEDGER_WEBHOOK_ALLOW_PRIVATE", "true"),
        ],
    )
    .unwrap();
    assert_eq!(c.sessions.retry_schedule, [Duration::from_secs(1), Duration::from_secs(2)]);
    assert_eq!(c.webhook_allowed_ports, None, "* is any port");
    assert_eq!(c.webhooks.timeout, Duration::from_millis(100));
    let kafka = c.kafka.unwrap();
    assert_eq!(kafka.brokers, "a:1,b:2");
    let extra = [("security.protocol", "SASL_SSL"), ("sasl.mechanism", "PLAIN")].map(|(k, v)| (k.into(), v.into()));
    assert_eq!(kafka.extra, extra);
    assert_eq!((c.payments.pix_expires_secs, c.ocpp.limits.password_checks), (60, 256));
    assert!(c.webhook_allow_private);
}

#[test]
fn a_bad_value_is_an_error_that_names_its_variable() {
    let env = error(None, &[("CHARGELEDGER_DB_MAX_CONNECTIONS", "many")]);
    assert!(
        env.contains("CHARGELEDGER_DB_MAX_CONNECTIONS=\"many\" is not valid") && env.contains("environment"),
        "{env}"
    );
    let file = TempFile::new("db_max_connections = -1\n");
    let from_file = error(Some(&file.0), &[]);
    assert!(from_file.contains("CHARGELEDGER_DB_MAX_CONNECTIONS=\"-1\"") && from_file.contains("db_max_connections"));
    assert!(from_file.contains(&file.0.display().to_string()), "{from_file}");
    for (name, value, why) in [
        ("CHARGELEDGER_TERMINAL_ONLINE_SECS", "0", "must be at least 1"),
        ("CHARGELEDGER_MAX_BODY_BYTES", "100", "must be at least 1024"),
        ("CHARGELEDGER_HTTP_ADDR", "localhost", "is not valid"),
        ("CHARGELEDGER_TRUST_CLIENT_TARIFF", "yes", "is not valid"),
        ("CHARGELEDGER_LOG_FORMAT", "xml", "must be text or json"),
        ("CHARGELEDGER_PAYMENTS_GATEWAY", "stripe", "must be simulator or pagarme"),
        ("CHARGELEDGER_WEBHOOK_RETRY_SCHEDULE_MS", "5s", "comma-separated list of milliseconds"),
        ("CHARGELEDGER_WEBHOOK_ALLOWED_PORTS", "0", "must be * or a comma-separated list of ports"),
        ("CHARGELEDGER_KAFKA_TOPIC_PREFIX", "a/b", "[a-zA-Z0-9._-]"),
        ("CHARGELEDGER_OCPP_AUTO_REGISTER_COMPANY", "acme", "is not valid"),
    ] {
        let e = error(None, &[(name, value)]);
        assert!(e.contains(name) && e.contains(why), "{name}={value}: {e}");
    }
    // A secret's value is never repeated.
    let short = error(None, &[("CHARGELEDGER_PUBLICATION_KEY", "tiny-secret")]);
    assert!(short.contains("CHARGELEDGER_PUBLICATION_KEY") && !short.contains("tiny-secret"), "{short}");
    let props = error(None, &[("CHARGELEDGER_KAFKA_PROPERTIES", "sasl.password")]);
    assert!(props.contains("CHARGELEDGER_KAFKA_PROPERTIES") && !props.contains("sasl.password"), "{props}");
    // Rules between settings, and the file's own mistakes.
    assert!(error(None, &[("CHARGELEDGER_OCPP_TLS_CERT", "c.pem")]).contains("CHARGELEDGER_OCPP_TLS_KEY"));
    assert!(error(None, &[("CHARGELEDGER_PAGARME_WEBHOOK_USER", "u")]).contains("_PASSWORD go together"));
    let pagarme = error(None, &[("CHARGELEDGER_PAYMENTS_GATEWAY", "pagarme")]);
    assert!(pagarme.contains("CHARGELEDGER_PAGARME_SECRET_KEY is required"), "{pagarme}");
    let missing = error(None, &[("CHARGELEDGER_JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem")]);
    assert!(missing.contains("CHARGELEDGER_JWT_PUBLIC_KEY_FILE /nonexistent/key.pem"), "{missing}");
    let typo = TempFile::new("http_adr = \"0.0.0.0:1\"\n");
    assert!(error(Some(&typo.0), &[]).contains("unknown setting `http_adr`"));
    let nested = TempFile::new("[http_addr]\nport = 1\n");
    assert!(error(Some(&nested.0), &[]).contains("CHARGELEDGER_HTTP_ADDR"));
    let broken = TempFile::new("http_addr = \n");
    assert!(error(Some(&broken.0), &[]).contains(&broken.0.display().to_string()));
    assert!(error(Some(Path::new("/nonexistent/chargeledger.toml")), &[]).contains("cannot read"));
}

/// A marker no default, help line or type name contains.
const MARKER: &str = "MARKER-5f1d2c9a7e3b4d6f8a0c1e3b5d7f9a2c";

#[test]
fn debug_prints_no_secret() {
    let mut env: Vec<(String, String)> = SETTINGS
        .iter()
        .filter(|s| s.secret)
        .map(|s| {
            let value = match s.key {
                "database_url" => format!("postgres://chargeledger:{MARKER}@db.internal:5432/chargeledger"),
                "smtp_url" => format!("smtp://mailer:{MARKER}@mail.internal:587"),
                "kafka_properties" => format!("security.protocol=SASL_SSL,sasl.password={MARKER}"),
                _ => MARKER.to_owned(),
            };
            (s.env.to_owned(), value)
        })
        .collect();
    let secrets: Vec<&str> = SETTINGS.iter().filter(|s| s.secret).map(|s| s.key).collect();
    for expected in [
        "database_url",
        "jwt_secret",
        "pagarme_secret_key",
        "pagarme_webhook_password",
        "smtp_url",
        "kafka_properties",
        "secrets_key",
        "publication_key",
    ] {
        assert!(secrets.contains(&expected), "{expected} is not marked secret");
    }
    // What the secrets need to be used at all.
    env.push(("CHARGELEDGER_PAGARME_WEBHOOK_USER".into(), "webhook-user".into()));
    env.push(("CHARGELEDGER_KAFKA_BROKERS".into(), "kafka.internal:9092".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let config = load(None, &env).unwrap();
    // The markers did arrive (else the test would prove nothing).
    assert_eq!(config.jwt_secret.expose_secret(), MARKER);
    assert!(config.database_url.contains(MARKER));
    assert!(config.kafka.as_ref().unwrap().extra.iter().any(|(_, v)| v == MARKER));
    let shown = format!("{config:?}");
    assert!(!shown.contains(MARKER), "Debug of Config shows a secret: {shown}");
    assert!(shown.contains("db.internal") && shown.contains("sasl.password"), "the rest is still shown: {shown}");
    let envs: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let settings = Settings::read(&layers::Layers::new(None, &|name| envs.get(name).cloned()).unwrap()).unwrap();
    assert!(!format!("{settings:?}").contains(MARKER), "Debug of Settings shows a secret");
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let help = settings_help();
    for s in SETTINGS {
        let line = help.lines().find(|l| l.trim_start().starts_with(&format!("{} ", s.env)));
        let line = line.unwrap_or_else(|| panic!("--help lacks {}:\n{help}", s.env));
        assert!(line.contains(s.key) && line.contains(s.default.unwrap_or("none")), "{line}");
        assert_eq!(line.contains("[secret]"), s.secret, "{line}");
    }
    assert!(help.contains("CHARGELEDGER_DATABASE_URL (or DATABASE_URL)") && help.contains(CONFIG_FILE_ENV));
    // And clap prints it.
    let long = <crate::cli::Cli as clap::CommandFactory>::command().render_long_help().to_string();
    assert!(SETTINGS.iter().all(|s| long.contains(s.env)), "{long}");
}
