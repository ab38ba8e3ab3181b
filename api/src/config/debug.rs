//! `Debug` of [`Config`]: every field, but never a secret. The secret fields
//! are `SecretString`s (their `Debug` is `[REDACTED]`); two are plain strings
//! the code passes on as such, so they are masked here: the database URL's
//! password and the values of the extra Kafka properties (`sasl.password`).
//! The structs are destructured whole, so a new field cannot be forgotten.

use std::fmt;

use super::{
    values::{keys_only, without_password},
    Config,
};

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config {
            database_url,
            http_addr,
            jwt_secret,
            jwt_issuer,
            jwt_audience,
            jwt_public_key_pem,
            db_max_connections,
            terminal_online,
            consistency_wait,
            seal_interval,
            ocpp,
            payments,
            smtp_url,
            smtp_from,
            sessions,
            trust_client_tariff,
            kafka,
            webhooks,
            webhook_allow_private,
            webhook_allowed_ports,
            secrets_key,
            limits,
            clock,
            log,
            log_format,
        } = self;
        f.debug_struct("Config")
            .field("database_url", &without_password(database_url))
            .field("http_addr", http_addr)
            .field("jwt_secret", jwt_secret)
            .field("jwt_issuer", jwt_issuer)
            .field("jwt_audience", jwt_audience)
            .field("jwt_public_key_pem", jwt_public_key_pem)
            .field("db_max_connections", db_max_connections)
            .field("terminal_online", terminal_online)
            .field("consistency_wait", consistency_wait)
            .field("seal_interval", seal_interval)
            .field("ocpp", ocpp)
            .field("payments", payments)
            .field("smtp_url", smtp_url)
            .field("smtp_from", smtp_from)
            .field("sessions", sessions)
            .field("trust_client_tariff", trust_client_tariff)
            .field("kafka", &kafka.as_ref().map(Kafka))
            .field("webhooks", webhooks)
            .field("webhook_allow_private", webhook_allow_private)
            .field("webhook_allowed_ports", webhook_allowed_ports)
            .field("secrets_key", secrets_key)
            .field("limits", limits)
            .field("clock", clock)
            .field("log", log)
            .field("log_format", log_format)
            .finish()
    }
}

/// The Kafka settings with the values of the extra properties masked.
struct Kafka<'a>(&'a gateways::kafka::KafkaConfig);

impl fmt::Debug for Kafka<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gateways::kafka::KafkaConfig {
            brokers,
            topic_prefix,
            partitions,
            replication,
            batch,
            message_timeout,
            extra,
            redactor,
        } = self.0;
        struct Extra<'a>(&'a [(String, String)]);
        impl fmt::Debug for Extra<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                keys_only(self.0, f)
            }
        }
        f.debug_struct("KafkaConfig")
            .field("brokers", brokers)
            .field("topic_prefix", topic_prefix)
            .field("partitions", partitions)
            .field("replication", replication)
            .field("batch", batch)
            .field("message_timeout", message_timeout)
            .field("extra", &Extra(extra))
            .field("redactor", redactor)
            .finish()
    }
}
