//! The relay loop: read the log after the checkpoint, hand batches to
//! librdkafka, move the checkpoint over what the broker confirmed.

use std::{
    collections::{HashSet, VecDeque},
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use commands::EventStore;
use rdkafka::{
    admin::AdminClient,
    client::DefaultClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig},
};
use tokio_util::sync::CancellationToken;

use super::{
    action, admin, checkpoint, create_topic, error::DEFAULT_MESSAGE_MAX_BYTES, producer, reason, record,
    status::record_stopped_at, Action, EventRef, KafkaConfig, Record, RelayError, RelayStatus, Stage, Stopped,
    CHECKPOINT,
};

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
    pub(super) producer: FutureProducer,
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
    pub(super) async fn recreate_producer(&mut self) -> Result<(), KafkaError> {
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
