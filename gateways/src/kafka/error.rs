//! Why a round of the relay failed, and what the relay does about it.

use commands::StoreError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

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
        /// The relay error underneath (Kafka, topic creation or the log).
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

    pub(super) fn at(self, event: &EventRef, stage: Stage) -> Self {
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
pub(super) const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

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
