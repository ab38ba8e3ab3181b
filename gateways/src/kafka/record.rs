//! The Kafka record of an event and the producer that sends it.

use chrono::SecondsFormat;
use commands::{EventStore, RecordedEvent, StoreError};
use rdkafka::{
    error::KafkaError,
    message::{Header, Headers, OwnedHeaders},
    producer::FutureProducer,
};
use serde_json::Value;

use super::{KafkaConfig, CHECKPOINT};

/// The CloudEvents binary-mode headers of an event.
pub fn headers(event: &RecordedEvent, subject: &str) -> OwnedHeaders {
    let ce_type = format!("{}.v{}", event.event_type, event.schema_version);
    let source = format!("/chargeledger/{}", event.category());
    let time = event.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let id = event.event_id.to_string();
    let position = event.position.to_string();
    let mut h = OwnedHeaders::new_with_capacity(11)
        .insert(Header { key: "ce_specversion", value: Some("1.0") })
        .insert(Header { key: "ce_id", value: Some(&id) })
        .insert(Header { key: "ce_type", value: Some(&ce_type) })
        .insert(Header { key: "ce_source", value: Some(&source) })
        .insert(Header { key: "ce_time", value: Some(&time) })
        .insert(Header { key: "ce_subject", value: Some(subject) })
        .insert(Header { key: "content-type", value: Some("application/json") })
        .insert(Header { key: "ce_position", value: Some(&position) });
    for (field, header) in
        [("correlationId", "ce_correlationid"), ("causationId", "ce_causationid"), ("companyId", "ce_companyid")]
    {
        if let Some(v) = event.metadata.get(field).and_then(Value::as_str) {
            h = h.insert(Header { key: header, value: Some(v) });
        }
    }
    h
}

/// One Kafka record of an event, as the relay produces it.
#[derive(Debug)]
pub struct Record {
    /// `<prefix>.<category>`.
    pub topic: String,
    /// The stream id (a wallet's with its customer pseudonymized).
    pub key: String,
    /// The redacted payload, JSON.
    pub payload: Vec<u8>,
    /// CloudEvents headers.
    pub headers: OwnedHeaders,
    /// Recorded-at, Unix ms.
    pub timestamp: i64,
}

impl Record {
    /// Payload, key and header bytes (librdkafka compares about this, plus
    /// framing, with `message.max.bytes`).
    pub fn bytes(&self) -> usize {
        let headers: usize = self.headers.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum();
        self.payload.len() + self.key.len() + headers
    }
}

/// Builds the record the relay produces for `event` (the only place a Kafka
/// value is made: its payload is redacted by the configured redactor).
pub fn record(config: &KafkaConfig, event: &RecordedEvent) -> Record {
    let payload = serde_json::to_vec(&config.redactor.publish(&event.event_type, &event.payload)).unwrap_or_default();
    let subject = config.redactor.stream_id(&event.stream_id);
    Record {
        topic: config.topic(event.category()),
        headers: headers(event, &subject),
        key: subject,
        payload,
        timestamp: event.recorded_at.timestamp_millis(),
    }
}

/// The relay's checkpoint (0 before the first run).
pub async fn checkpoint(store: &EventStore) -> Result<i64, StoreError> {
    store.checkpoint(CHECKPOINT).await
}

/// Builds a producer with the relay's delivery guarantees.
pub fn producer(config: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    config
        .client()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "5")
        .set("compression.type", "none")
        .set("message.timeout.ms", config.message_timeout.as_millis().to_string())
        .create()
}
