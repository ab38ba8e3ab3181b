//! The Kafka relay: every event of the log, in log order, published to one
//! topic per stream category (ADR 0011).
//!
//! - Topic `<prefix>.<category>` (`chargeledger.charge_session`), created if
//!   missing with the configured partitions.
//! - Key: the stream id, so each entity's events stay in order on one partition.
//! - Value: the event payload as [`commands::publication::Redactor::publish`]
//!   makes it (ADR 0018: no CPF, e-mail, card or network token, password or
//!   hash, secret charger configuration value; id tags as keyed pseudonyms;
//!   raw OCPP frames parsed, redacted and re-serialized). CloudEvents binary-mode headers:
//!   `ce_specversion`, `ce_id` (event id), `ce_type` (`<type>.v<version>`),
//!   `ce_source`, `ce_time`, `ce_subject` (stream id), `content-type`, and the
//!   extensions `ce_position` (global log position), `ce_correlationid`,
//!   `ce_causationid` and `ce_companyid` when set.
//! - An idempotent producer (`enable.idempotence`, `acks=all`) that retries
//!   without a time limit, so what reaches a partition is always a prefix of
//!   what was sent to it, in order: a broker outage stalls the relay (its lag
//!   grows) rather than leaving a gap. The checkpoint moves only past events
//!   whose delivery the broker confirmed, so after a crash the relay resumes
//!   there: nothing is lost, and an event may arrive twice — consumers dedupe
//!   by `ce_id`, after which each key's events are in order.
//! - Errors ([`action`]): transient ones are retried from the checkpoint with
//!   a backoff; a fatal producer error replaces the producer; a permanent one
//!   (the event is too large, its topic invalid or unauthorized, …) stops the
//!   relay at that event, reported in [`RelayStatus`] and the [`STOPPED_AT`]
//!   row, until an operator fixes the cause and restarts it.

mod error;
mod probe;
mod record;
mod relay;
mod status;
#[cfg(test)]
mod tests;

use std::time::Duration;

use rdkafka::ClientConfig;

pub use error::{action, is_permanent, reason, Action, EventRef, RelayError, Stage};
pub use probe::{admin, create_topic, KafkaProbe};
pub use record::{checkpoint, headers, producer, record, Record};
pub use relay::Relay;
pub use status::{stopped_at, RelayStatus, Stopped, STOPPED_AT};

/// The relay's checkpoint row in `projector_checkpoints`.
pub const CHECKPOINT: &str = "kafka_relay";

/// Relay settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Topic name prefix (`chargeledger`).
    pub topic_prefix: String,
    /// Partitions of topics the relay creates.
    pub partitions: i32,
    /// Replication factor of topics the relay creates.
    pub replication: i32,
    /// Events read and published per round.
    pub batch: i64,
    /// How long librdkafka keeps retrying one message before it reports
    /// failure; zero (the default) retries until delivered, so that with the
    /// idempotent producer a partition never has a gap.
    pub message_timeout: Duration,
    /// Extra librdkafka properties (`security.protocol`, `sasl.*`, …).
    pub extra: Vec<(String, String)>,
    /// Redacts values before they are published (ADR 0018).
    pub redactor: commands::publication::Redactor,
}

impl KafkaConfig {
    /// Defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: "chargeledger".into(),
            partitions: 6,
            replication: 1,
            batch: 1000,
            message_timeout: Duration::ZERO,
            extra: Vec::new(),
            redactor: commands::publication::Redactor::default(),
        }
    }

    /// The topic of a stream category.
    pub fn topic(&self, category: &str) -> String {
        topic_name(&self.topic_prefix, category)
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

/// `<prefix>.<category>`.
pub fn topic_name(prefix: &str, category: &str) -> String {
    format!("{prefix}.{category}")
}
