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

use std::{
    collections::{HashSet, VecDeque},
    time::Duration,
};

use chrono::SecondsFormat;
use commands::{EventStore, RecordedEvent, StoreError};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, OwnedHeaders},
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer},
    ClientConfig,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

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

/// What stops the relay (it retries from its checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The log.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A topic could not be created.
    #[error("cannot create topic {0}: {1}")]
    Topic(String, String),
}

impl From<sqlx::Error> for RelayError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

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

/// A Kafka client for health checks.
#[derive(Clone)]
pub struct KafkaProbe(FutureProducer);

impl std::fmt::Debug for KafkaProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaProbe")
    }
}

impl KafkaProbe {
    /// A client for `config` (connects lazily).
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self(config.client().create()?))
    }

    /// Whether a broker answers a metadata request within `timeout`; the number of brokers.
    pub async fn ping(&self, timeout: Duration) -> Result<usize, String> {
        let producer = self.0.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).map(|m| m.brokers().len()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// Creates `topic` with the configured partitions and replication (an
/// existing topic is left as it is).
pub async fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    config: &KafkaConfig,
    topic: &str,
) -> Result<(), RelayError> {
    let new = NewTopic::new(topic, config.partitions, TopicReplication::Fixed(config.replication));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&new], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(RelayError::Topic(name, code.to_string())),
        }
    }
    Ok(())
}

/// An admin client for `config`.
pub fn admin(config: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    config.client().create()
}

/// Batches handed to librdkafka whose delivery reports are still awaited.
const IN_FLIGHT: usize = 4;

/// Events handed to librdkafka, with their delivery reports to come.
struct Batch {
    last: i64,
    deliveries: Vec<(i64, DeliveryFuture)>,
}

/// Publishes the log.
pub struct Relay {
    store: EventStore,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    config: KafkaConfig,
    topics: HashSet<String>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("brokers", &self.config.brokers).finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for `config` (no connection is made until it runs).
    pub fn new(store: EventStore, config: KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self { producer: producer(&config)?, admin: admin(&config)?, store, config, topics: HashSet::new() })
    }

    async fn ensure_topic(&mut self, topic: &str) -> Result<(), RelayError> {
        if self.topics.contains(topic) {
            return Ok(());
        }
        create_topic(&self.admin, &self.config, topic).await?;
        self.topics.insert(topic.to_owned());
        Ok(())
    }

    /// Reads the events after `after` and hands them to librdkafka in log
    /// order. `None` when there is nothing to read.
    async fn send_batch(&mut self, after: i64) -> Result<Option<Batch>, RelayError> {
        let events = self.store.read_all(after, self.config.batch).await?;
        let Some(last) = events.last().map(|e| e.position) else { return Ok(None) };
        let categories: HashSet<&str> = events.iter().map(RecordedEvent::category).collect();
        for category in categories {
            self.ensure_topic(&self.config.topic(category)).await?;
        }
        let mut deliveries = Vec::with_capacity(events.len());
        for event in &events {
            deliveries.push((event.position, self.enqueue(event).await?));
        }
        Ok(Some(Batch { last, deliveries }))
    }

    /// Waits for a batch's delivery reports, in order, and moves the checkpoint
    /// over the confirmed prefix. Returns how many were confirmed.
    async fn confirm(&self, batch: Batch) -> Result<usize, RelayError> {
        let mut confirmed = None;
        let mut count = 0;
        let mut failure = None;
        for (position, delivery) in batch.deliveries {
            match delivery.await {
                Ok(Ok(_)) => {
                    if failure.is_none() {
                        confirmed = Some(position);
                        count += 1;
                    }
                }
                Ok(Err((e, _))) => {
                    failure.get_or_insert(RelayError::Kafka(e));
                }
                Err(_) => {
                    failure.get_or_insert(RelayError::Kafka(KafkaError::Canceled));
                }
            }
        }
        if let Some(position) = confirmed {
            self.store.advance_checkpoint(CHECKPOINT, position).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(count),
        }
    }

    /// Publishes everything readable after the checkpoint, keeping up to
    /// [`IN_FLIGHT`] batches in flight (reading the next while the broker
    /// acknowledges the previous); the checkpoint only ever covers a prefix of
    /// confirmed events. Returns how many were published.
    pub async fn publish_available(&mut self) -> Result<usize, RelayError> {
        let mut cursor = checkpoint(&self.store).await?;
        let mut in_flight: VecDeque<Batch> = VecDeque::new();
        let mut published = 0;
        let mut exhausted = false;
        loop {
            while !exhausted && in_flight.len() < IN_FLIGHT {
                match self.send_batch(cursor).await? {
                    Some(batch) => {
                        cursor = batch.last;
                        in_flight.push_back(batch);
                    }
                    None => exhausted = true,
                }
            }
            match in_flight.pop_front() {
                Some(batch) => published += self.confirm(batch).await?,
                None => return Ok(published),
            }
        }
    }

    /// Hands one event to librdkafka, waiting while its queue is full.
    async fn enqueue(&self, event: &RecordedEvent) -> Result<DeliveryFuture, RelayError> {
        let Record { topic, key, payload, headers, timestamp } = record(&self.config, event);
        let mut record = FutureRecord::to(&topic).key(&key).payload(&payload).timestamp(timestamp).headers(headers);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Runs until shutdown: publishes whatever is after the checkpoint, then
    /// waits for new events. Errors are logged and retried from the checkpoint.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut wakeups = self.store.subscribe();
        let mut backoff = Duration::from_millis(100);
        loop {
            wakeups.mark_unchanged();
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                outcome = self.publish_available() => outcome,
            };
            let waited = match outcome {
                Ok(0) => match self.store.held_back_after(checkpoint(&self.store).await.unwrap_or(0)).await {
                    // An older transaction holds events back: poll briefly.
                    Ok(true) => Some(Duration::from_millis(10)),
                    _ => None,
                },
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "relay failed; resuming from its checkpoint");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    Some(wait)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wakeups.changed(), if waited.is_none() => {}
                _ = tokio::time::sleep(waited.unwrap_or(Duration::from_secs(1))) => {}
            }
        }
        // Let what is queued go out before the process ends (its checkpoint
        // is not moved: the next run sends it again, and consumers dedupe).
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5))).await;
    }
}
