//! From the flat [`Settings`] to the [`Config`] the roles use: units, the
//! bounds each setting always had (`.max(1)` and the like), files read, and the
//! rules between settings (pairs that go together).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{limits::LimitsConfig, ocpp_limits, values::Secret, Config, ConfigError, PaymentsConfig, Settings};

/// The configuration of `s`.
pub(super) fn config(s: Settings) -> Result<Config, ConfigError> {
    let jwt_public_key_pem = read_file("CHARGELEDGER_JWT_PUBLIC_KEY_FILE", s.jwt_public_key_file.as_deref())?;
    let ocpp = ocpp(&s)?;
    let payments = payments(&s)?;
    let mut sessions = commands::sessions::SessionConfig {
        start_timeout: Duration::from_secs(s.session_start_timeout_secs.max(1)),
        retry_schedule: s.queue_retry_schedule_ms.durations(),
        ..Default::default()
    };
    sessions.command_timeout_ms = i64::try_from(ocpp.call_timeout.as_millis()).unwrap_or(i64::MAX);
    // Pseudonyms on Kafka and in webhooks (ADR 0018): one key for both, never the JWT secret.
    let redactor = match &s.publication_key {
        Some(Secret(key)) => commands::publication::Redactor::new(key.expose_secret().as_bytes()),
        None => commands::publication::Redactor::random(),
    };
    let kafka = s.kafka_brokers.clone().map(|brokers| gateways::kafka::KafkaConfig {
        topic_prefix: s.kafka_topic_prefix.0.clone(),
        partitions: s.kafka_partitions.max(1),
        replication: s.kafka_replication.max(1),
        extra: s.kafka_properties.clone().map(|p| p.0).unwrap_or_default(),
        redactor: redactor.clone(),
        ..gateways::kafka::KafkaConfig::new(brokers)
    });
    let webhooks = commands::webhooks::WebhookConfig {
        timeout: Duration::from_millis(s.webhook_timeout_ms.clamp(100, 60_000)),
        schedule: s.webhook_retry_schedule_ms.durations(),
        redactor,
        ..Default::default()
    };
    let terminal_online = i64::try_from(s.terminal_online_secs.0)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| ConfigError("CHARGELEDGER_TERMINAL_ONLINE_SECS is too large".into()))?;
    Ok(Config {
        limits: LimitsConfig::from_settings(&s),
        database_url: s.database_url.0,
        http_addr: s.http_addr,
        jwt_secret: s.jwt_secret.map_or_else(|| SecretString::from(""), |secret| secret.0),
        jwt_issuer: s.jwt_issuer,
        jwt_audience: s.jwt_audience,
        jwt_public_key_pem,
        db_max_connections: s.db_max_connections,
        terminal_online,
        consistency_wait: Duration::from_millis(s.consistency_wait_ms),
        seal_interval: Duration::from_millis(s.seal_interval_ms),
        ocpp,
        payments,
        smtp_url: s.smtp_url.map(|url| url.0),
        smtp_from: s.smtp_from,
        sessions,
        trust_client_tariff: s.trust_client_tariff,
        kafka,
        webhooks,
        webhook_allow_private: s.webhook_allow_private,
        webhook_allowed_ports: s.webhook_allowed_ports.0,
        secrets_key: s.secrets_key.map(|key| key.0),
        clock: commands::clock::Clock::default(),
        log: s.log,
        log_format: s.log_format.0,
    })
}

fn ocpp(s: &Settings) -> Result<gateways::ocpp::OcppConfig, ConfigError> {
    let mut ocpp = gateways::ocpp::OcppConfig::new(s.ocpp_addr);
    ocpp.limits = ocpp_limits::from_settings(s);
    ocpp.auto_register_company = s.ocpp_auto_register_company;
    ocpp.max_frame_bytes = s.ocpp_max_frame_bytes;
    ocpp.ping_interval = Duration::from_secs(s.ocpp_ping_secs.max(1));
    ocpp.call_timeout = Duration::from_millis(s.ocpp_call_timeout_ms.max(100));
    ocpp.heartbeat_interval_s = s.ocpp_heartbeat_secs.max(1);
    ocpp.tls = match (&s.ocpp_tls_cert, &s.ocpp_tls_key) {
        (Some(cert), Some(key)) => Some((cert.into(), key.into())),
        (None, None) => None,
        _ => return Err(ConfigError("CHARGELEDGER_OCPP_TLS_CERT and CHARGELEDGER_OCPP_TLS_KEY go together".into())),
    };
    Ok(ocpp)
}

/// The payment settings of `s`.
pub(super) fn payments(s: &Settings) -> Result<PaymentsConfig, ConfigError> {
    let pagarme_secret_key = s.pagarme_secret_key.clone().map(|key| key.0);
    if s.payments_gateway.0 == "pagarme" && pagarme_secret_key.is_none() {
        return Err(ConfigError("CHARGELEDGER_PAGARME_SECRET_KEY is required with the pagarme gateway".into()));
    }
    let webhook_basic = match (&s.pagarme_webhook_user, &s.pagarme_webhook_password) {
        (Some(user), Some(password)) => Some((user.clone(), password.0.clone())),
        (None, None) => None,
        _ => return Err(ConfigError("CHARGELEDGER_PAGARME_WEBHOOK_USER and _PASSWORD go together".into())),
    };
    Ok(PaymentsConfig {
        gateway: s.payments_gateway.0.clone(),
        pagarme_base_url: s.pagarme_base_url.clone(),
        pagarme_secret_key,
        pagarme_timeout: Duration::from_millis(s.pagarme_timeout_ms.max(100)),
        webhook_basic,
        webhook_public_keys_pem: read_file(
            "CHARGELEDGER_PAGARME_WEBHOOK_PUBLIC_KEYS",
            s.pagarme_webhook_public_keys.as_deref(),
        )?,
        pix_expires_secs: s.pix_expires_secs.clamp(60, 7 * 86_400),
        simulator_pix_autopay: Duration::from_secs(s.simulator_pix_autopay_secs),
        reconcile_interval: Duration::from_millis(s.reconcile_interval_ms.max(50)),
    })
}

/// The text of the file a setting names (PEM keys).
fn read_file(setting: &str, path: Option<&str>) -> Result<Option<String>, ConfigError> {
    path.map(|p| std::fs::read_to_string(p).map_err(|e| ConfigError(format!("{setting} {p}: {e}")))).transpose()
}
