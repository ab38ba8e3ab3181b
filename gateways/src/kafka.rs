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

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use chrono::SecondsFormat;
use commands::{EventStore, RecordedEvent, StoreError};
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, Headers, OwnedHeaders},
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig},
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

/// Why a round of the relay failed ([`action`] says what happens next).
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
    Topic(String, RDKafkaErrorCode),
    /// One event could not be published: the events before it were handed
    /// over, none after it.
    #[error("event at position {} (type {}, key {}) at {stage:?}: {source}", .event.position, .event.event_type, .event.subject)]
    Event {
        /// Which event (never its payload).
        event: Box<EventRef>,
        /// Where it failed.
        stage: Stage,
        /// Why.
        #[source]
        source: Box<RelayError>,
    },
}

impl From<sqlx::Error> for RelayError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

impl RelayError {
    /// The librdkafka or broker error code underneath, if any.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            Self::Store(_) => None,
            Self::Kafka(KafkaError::AdminOp(code)) | Self::Topic(_, code) => Some(*code),
            Self::Kafka(e) => e.rdkafka_error_code(),
            Self::Event { source, .. } => source.code(),
        }
    }

    fn at(self, event: &EventRef, stage: Stage) -> Self {
        Self::Event { event: Box::new(event.clone()), stage, source: Box::new(self) }
    }
}

/// Where the publication of an event failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Creating its topic.
    Topic,
    /// Handing it to librdkafka (which checks `message.max.bytes` there).
    Enqueue,
    /// Its delivery report (the broker's answer).
    Delivery,
}

/// An event as failures name it: what may be logged and shown (no payload,
/// and the key as published, pseudonymized where ADR 0018 says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    /// Global log position.
    pub position: i64,
    /// Event type (`terminal.registered`).
    pub event_type: String,
    /// The Kafka key (the published stream id).
    pub subject: String,
    /// Its topic.
    pub topic: String,
    /// Payload, key and header bytes of its record.
    pub bytes: usize,
}

/// What the relay does about a failed round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Transient (broker down, timeouts, the log unreachable, …): retry from
    /// the checkpoint after a backoff.
    Retry,
    /// The producer is unusable (a librdkafka fatal error): build a new one
    /// from the configuration, then retry from the checkpoint.
    RecreateProducer,
    /// Permanent for this event (too large, invalid or unauthorized topic, …):
    /// stop before it, so nothing after it is published, until an operator
    /// fixes the cause and restarts the relay.
    Stop,
}

/// Codes that do not go away by sending the same event again.
pub fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidTopic
            | C::InvalidRecord
            | C::InvalidTimestamp
            | C::InvalidRequiredAcks
            | C::InvalidRequest
            | C::InvalidArgument
            | C::InvalidType
            | C::InvalidPartitions
            | C::InvalidReplicaAssignment
            | C::InvalidConfig
            | C::PolicyViolation
            | C::UnsupportedVersion
            | C::UnsupportedFeature
            | C::UnsupportedForMessageFormat
            | C::UnsupportedCompressionType
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::UnsupportedSASLMechanism
            | C::IllegalSASLState
            | C::Authentication
            | C::KeySerialization
            | C::ValueSerialization
    )
}

/// Codes after which the idempotent producer's state cannot be trusted.
fn breaks_producer(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::Fatal
            | C::OutOfOrderSequenceNumber
            | C::InvalidProducerEpoch
            | C::ProducerFenced
            | C::UnknownProducerId
            | C::InvalidProducerIdMapping
            | C::Inconsistent
            | C::GaplessGuarantee
    )
}

/// What to do about `error`; `fatal` is whether the producer reports a fatal
/// error (`producer.client().fatal_error()`). A broken producer is replaced
/// first (the retry then meets a permanent error again, if there is one); a
/// permanent code stops the relay only when it is about one event; anything
/// else (unknown codes included) is retried, which never reorders or skips.
pub fn action(error: &RelayError, fatal: bool) -> Action {
    let code = error.code();
    if fatal || code.is_some_and(breaks_producer) {
        Action::RecreateProducer
    } else if matches!(error, RelayError::Event { .. }) && code.is_some_and(is_permanent) {
        Action::Stop
    } else {
        Action::Retry
    }
}

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Why the event of a [`Action::Stop`] error cannot be published, for
/// operators (no payload, no key).
pub fn reason(error: &RelayError, message_max_bytes: usize) -> String {
    use RDKafkaErrorCode as C;
    let RelayError::Event { event, stage, source } = error else { return error.to_string() };
    match (stage, source.as_ref(), error.code()) {
        (_, RelayError::Topic(topic, code), _) => format!("cannot create topic {topic}: {code}"),
        (Stage::Enqueue, _, Some(C::MessageSizeTooLarge)) => {
            format!("message too large ({} bytes > message.max.bytes {message_max_bytes})", event.bytes)
        }
        (Stage::Delivery, _, Some(C::MessageSizeTooLarge | C::MessageBatchTooLarge | C::InvalidMessageSize)) => {
            format!(
                "the broker refused the message as too large ({} bytes; see the topic's max.message.bytes)",
                event.bytes
            )
        }
        (_, _, Some(code)) => code.to_string(),
        (_, source, None) => source.to_string(),
    }
}

/// A stopped relay: the event it cannot publish and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Global position of the event (the checkpoint is before it).
    pub position: i64,
    /// Its type.
    pub event_type: String,
    /// Why (see [`reason`]).
    pub reason: String,
}

impl Stopped {
    /// `event at position P (type T) cannot be published: <reason>`.
    pub fn detail(&self) -> String {
        format!("event at position {} (type {}) cannot be published: {}", self.position, self.event_type, self.reason)
    }
}

/// The relay's state, shared with the health checks of its process.
#[derive(Debug, Default)]
pub struct RelayStatus {
    stopped: Mutex<Option<Stopped>>,
    recreations: AtomicU64,
}

impl RelayStatus {
    /// Where and why the relay stopped, if it did.
    pub fn stopped(&self) -> Option<Stopped> {
        self.stopped.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Producers replaced after a fatal error.
    pub fn producer_recreations(&self) -> u64 {
        self.recreations.load(Ordering::Relaxed)
    }

    fn set_stopped(&self, stopped: Option<Stopped>) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = stopped;
    }
}

/// The row of `projector_checkpoints` where a stopped relay records the
/// position it stopped at (0 while it runs), for the health checks of every
/// process (the relay may run alone, as `chargeledger relay`).
pub const STOPPED_AT: &str = "kafka_relay__stopped_at";

/// The position a relay stopped at, as recorded in the log's database.
pub async fn stopped_at(store: &EventStore) -> Result<Option<i64>, StoreError> {
    Ok(Some(store.checkpoint(STOPPED_AT).await?).filter(|p| *p > 0))
}

async fn record_stopped_at(store: &EventStore, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (name, position) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET position = $2, updated_at = now()",
    )
    .bind(STOPPED_AT)
    .bind(position)
    .execute(store.pool())
    .await?;
    Ok(())
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
            Err((name, code)) => return Err(RelayError::Topic(name, code)),
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

/// Events handed to librdkafka, with their delivery reports to come, and the
/// failure that ended the batch early (nothing after it was handed over).
struct Batch {
    last: i64,
    deliveries: Vec<(EventRef, DeliveryFuture)>,
    failure: Option<RelayError>,
}

/// Publishes the log.
pub struct Relay {
    store: EventStore,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    config: KafkaConfig,
    topics: HashSet<String>,
    status: Arc<RelayStatus>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("brokers", &self.config.brokers).finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for `config` (no connection is made until it runs).
    pub fn new(store: EventStore, config: KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: producer(&config)?,
            admin: admin(&config)?,
            store,
            config,
            topics: HashSet::new(),
            status: Arc::default(),
        })
    }

    /// What the relay reports (the health checks of its process read it).
    pub fn status(&self) -> Arc<RelayStatus> {
        self.status.clone()
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
    /// order. `None` when there is nothing to read. An event that cannot be
    /// handed over ends the batch: it carries the failure, and the events
    /// before it.
    async fn send_batch(&mut self, after: i64) -> Result<Option<Batch>, RelayError> {
        let events = self.store.read_all(after, self.config.batch).await?;
        let Some(mut last) = events.last().map(|e| e.position) else { return Ok(None) };
        let mut deliveries = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in &events {
            let record = record(&self.config, event);
            let sent = EventRef {
                position: event.position,
                event_type: event.event_type.clone(),
                subject: record.key.clone(),
                topic: record.topic.clone(),
                bytes: record.bytes(),
            };
            if let Err(e) = self.ensure_topic(&record.topic).await {
                failure = Some(e.at(&sent, Stage::Topic));
            } else {
                match self.enqueue(record).await {
                    Ok(delivery) => deliveries.push((sent, delivery)),
                    Err(e) => failure = Some(e.at(&sent, Stage::Enqueue)),
                }
            }
            if failure.is_some() {
                last = event.position;
                break;
            }
        }
        Ok(Some(Batch { last, deliveries, failure }))
    }

    /// Waits for a batch's delivery reports, in order, and moves the checkpoint
    /// over the confirmed prefix. Returns how many were confirmed, or the
    /// first failure.
    async fn confirm(&self, batch: Batch) -> Result<usize, RelayError> {
        let mut confirmed = None;
        let mut count = 0;
        let mut failure = None;
        for (sent, delivery) in batch.deliveries {
            let error = match delivery.await {
                Ok(Ok(_)) => None,
                Ok(Err((e, _))) => Some(e),
                Err(_) => Some(KafkaError::Canceled),
            };
            match error {
                None if failure.is_none() => {
                    confirmed = Some(sent.position);
                    count += 1;
                }
                None => {}
                Some(e) => {
                    failure.get_or_insert_with(|| RelayError::Kafka(e).at(&sent, Stage::Delivery));
                }
            }
        }
        if let Some(position) = confirmed {
            self.store.advance_checkpoint(CHECKPOINT, position).await?;
        }
        match failure.or(batch.failure) {
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
                        // Nothing after a failed event is sent.
                        exhausted = batch.failure.is_some();
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

    /// Hands one record to librdkafka, waiting while its queue is full.
    async fn enqueue(&self, record: Record) -> Result<DeliveryFuture, RelayError> {
        let Record { topic, key, payload, headers, timestamp } = record;
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

    /// Replaces a producer that hit a fatal error with a new one from the
    /// configuration (what the old one still holds is dropped: the relay
    /// resends from its checkpoint).
    async fn recreate_producer(&mut self) -> Result<(), KafkaError> {
        let old = std::mem::replace(&mut self.producer, producer(&self.config)?);
        self.status.recreations.fetch_add(1, Ordering::Relaxed);
        // Dropping a producer purges and waits a little: not on this thread.
        let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        Ok(())
    }

    /// Stops at the event of a permanent error: logs it once, reports it to
    /// the status and the database, and drops what librdkafka still queues.
    async fn stop(&self, error: &RelayError, shutdown: &CancellationToken) {
        let RelayError::Event { event, .. } = error else { return };
        let max = self
            .config
            .extra
            .iter()
            .find(|(k, _)| k == "message.max.bytes")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        let stopped =
            Stopped { position: event.position, event_type: event.event_type.clone(), reason: reason(error, max) };
        tracing::error!(
            position = event.position,
            event_type = %event.event_type,
            key = %event.subject,
            topic = %event.topic,
            bytes = event.bytes,
            reason = %stopped.reason,
            "the Kafka relay stopped: this event cannot be published, so nothing after it is; \
             fix the cause (e.g. raise message.max.bytes in CHARGELEDGER_KAFKA_PROPERTIES) and restart the relay (ADR 0011)"
        );
        self.status.set_stopped(Some(stopped));
        self.producer.purge(PurgeConfig::default().queue());
        while let Err(error) = record_stopped_at(&self.store, event.position).await {
            tracing::warn!(%error, "cannot record where the relay stopped; will retry");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Runs until shutdown: publishes whatever is after the checkpoint, then
    /// waits for new events. Transient errors are logged and retried from the
    /// checkpoint; a fatal producer error replaces the producer; a permanent
    /// error stops the relay at its event ([`action`]).
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.status.set_stopped(None);
        if let Err(error) = record_stopped_at(&self.store, 0).await {
            tracing::warn!(%error, "cannot clear the relay's stopped mark");
        }
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
                    let fatal = self.producer.client().fatal_error();
                    match action(&error, fatal.is_some()) {
                        Action::Stop => {
                            self.stop(&error, &shutdown).await;
                            break;
                        }
                        Action::RecreateProducer => {
                            let fatal = fatal.map(|(code, reason)| format!("{code}: {reason}"));
                            tracing::error!(%error, ?fatal, "the Kafka producer failed fatally; replacing it and resuming from the checkpoint");
                            if let Err(error) = self.recreate_producer().await {
                                tracing::warn!(%error, "cannot create a new Kafka producer; will retry");
                            }
                        }
                        Action::Retry => {
                            tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "relay failed; resuming from its checkpoint");
                            if matches!(
                                error.code(),
                                Some(
                                    RDKafkaErrorCode::UnknownTopic
                                        | RDKafkaErrorCode::UnknownPartition
                                        | RDKafkaErrorCode::UnknownTopicOrPartition
                                )
                            ) {
                                // Gone from the cluster: create it again.
                                self.topics.clear();
                            }
                        }
                    }
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

#[cfg(test)]
mod tests {
    use rdkafka::{
        mocking::MockCluster,
        types::{RDKafkaApiKey, RDKafkaRespErr},
    };

    use super::*;

    fn event() -> EventRef {
        EventRef {
            position: 42,
            event_type: "terminal.registered".into(),
            subject: "terminal-T1".into(),
            topic: "chargeledger.terminal".into(),
            bytes: 5_000,
        }
    }

    fn produce(code: RDKafkaErrorCode, stage: Stage) -> RelayError {
        RelayError::Kafka(KafkaError::MessageProduction(code)).at(&event(), stage)
    }

    #[test]
    fn permanent_errors_about_an_event_stop_the_relay() {
        use RDKafkaErrorCode as C;
        for code in [
            C::MessageSizeTooLarge,
            C::MessageBatchTooLarge,
            C::InvalidTopic,
            C::InvalidRecord,
            C::TopicAuthorizationFailed,
            C::ClusterAuthorizationFailed,
            C::PolicyViolation,
            C::UnsupportedVersion,
            C::InvalidArgument,
        ] {
            for stage in [Stage::Enqueue, Stage::Delivery] {
                assert_eq!(action(&produce(code, stage), false), Action::Stop, "{code:?} at {stage:?}");
            }
        }
        let topic = RelayError::Topic("chargeledger.terminal".into(), C::TopicAuthorizationFailed);
        assert_eq!(action(&topic.at(&event(), Stage::Topic), false), Action::Stop);
        let refused = RelayError::Kafka(KafkaError::AdminOp(C::InvalidConfig)).at(&event(), Stage::Topic);
        assert_eq!(action(&refused, false), Action::Stop);
    }

    #[test]
    fn transient_errors_are_retried() {
        use RDKafkaErrorCode as C;
        for code in [
            C::QueueFull,
            C::MessageTimedOut,
            C::RequestTimedOut,
            C::OperationTimedOut,
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::LeaderNotAvailable,
            C::NotLeaderForPartition,
            C::NotEnoughReplicas,
            C::NotEnoughReplicasAfterAppend,
            C::NetworkException,
            C::BrokerNotAvailable,
            C::NotController,
            C::KafkaStorageError,
            C::ThrottlingQuotaExceeded,
            C::UnknownTopicOrPartition,
            C::UnknownTopic,
            C::UnknownPartition,
            C::InvalidReplicationFactor,
            C::PurgeQueue,
            C::Unknown,
        ] {
            assert_eq!(action(&produce(code, Stage::Delivery), false), Action::Retry, "{code:?}");
        }
        let canceled = RelayError::Kafka(KafkaError::Canceled).at(&event(), Stage::Delivery);
        assert_eq!(action(&canceled, false), Action::Retry);
        let store = RelayError::Store(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(action(&store, false), Action::Retry);
        // A permanent code that is about no event in particular has no event to stop at.
        assert_eq!(action(&RelayError::Kafka(KafkaError::AdminOp(C::InvalidConfig)), false), Action::Retry);
    }

    #[test]
    fn a_fatal_producer_is_replaced_whatever_the_error_says() {
        use RDKafkaErrorCode as C;
        assert_eq!(action(&produce(C::Fatal, Stage::Enqueue), false), Action::RecreateProducer);
        assert_eq!(action(&produce(C::Fatal, Stage::Delivery), false), Action::RecreateProducer);
        assert_eq!(action(&produce(C::ProducerFenced, Stage::Delivery), false), Action::RecreateProducer);
        assert_eq!(action(&produce(C::OutOfOrderSequenceNumber, Stage::Delivery), false), Action::RecreateProducer);
        // `fatal_error()` is set: even a "permanent" code goes to a new producer first.
        assert_eq!(action(&produce(C::MessageSizeTooLarge, Stage::Delivery), true), Action::RecreateProducer);
        assert_eq!(action(&produce(C::PurgeQueue, Stage::Delivery), true), Action::RecreateProducer);
    }

    #[test]
    fn reasons_say_what_to_fix_without_the_payload() {
        let local = produce(RDKafkaErrorCode::MessageSizeTooLarge, Stage::Enqueue);
        assert_eq!(reason(&local, 4096), "message too large (5000 bytes > message.max.bytes 4096)");
        let broker = produce(RDKafkaErrorCode::MessageSizeTooLarge, Stage::Delivery);
        assert!(reason(&broker, 4096).contains("max.message.bytes"), "{}", reason(&broker, 4096));
        let topic = RelayError::Topic("chargeledger.terminal".into(), RDKafkaErrorCode::TopicAuthorizationFailed)
            .at(&event(), Stage::Topic);
        assert_eq!(
            reason(&topic, 4096),
            "cannot create topic chargeledger.terminal: TopicAuthorizationFailed (Broker: Topic authorization failed)"
        );
        let stopped = Stopped { position: 42, event_type: "terminal.registered".into(), reason: reason(&local, 4096) };
        assert_eq!(
            stopped.detail(),
            "event at position 42 (type terminal.registered) cannot be published: \
             message too large (5000 bytes > message.max.bytes 4096)"
        );
    }

    async fn send(producer: &FutureProducer, topic: &str) -> Result<(), KafkaError> {
        let record = FutureRecord::to(topic).key("k").payload("{}");
        let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e),
            Err(_) => Err(KafkaError::Canceled),
        }
    }

    /// A real fatal error: librdkafka's mock broker answers the idempotent
    /// producer's first request out of sequence.
    #[tokio::test]
    async fn a_fatal_producer_error_is_seen_and_a_new_producer_replaces_the_broken_one() {
        let mock = MockCluster::new(1).unwrap();
        mock.create_topic("chargeledger.probe", 1, 1).unwrap();
        let mut config = KafkaConfig::new(mock.bootstrap_servers());
        config.message_timeout = Duration::from_secs(10);
        let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://127.0.0.1:1/unused").unwrap();
        let mut relay = Relay::new(EventStore::new(pool), config).unwrap();
        mock.request_errors(RDKafkaApiKey::Produce, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER]);

        let error = send(&relay.producer, "chargeledger.probe").await.unwrap_err();
        let fatal = relay.producer.client().fatal_error();
        assert!(fatal.is_some(), "no fatal error after {error}");
        let error = RelayError::Kafka(error).at(&event(), Stage::Delivery);
        assert_eq!(action(&error, true), Action::RecreateProducer, "{error}");
        // The broken producer never recovers by itself.
        let again = send(&relay.producer, "chargeledger.probe").await.unwrap_err();
        assert_eq!(again.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal), "{again}");

        relay.recreate_producer().await.unwrap();
        assert_eq!(relay.status().producer_recreations(), 1);
        assert!(relay.producer.client().fatal_error().is_none());
        send(&relay.producer, "chargeledger.probe").await.unwrap();
    }
}
