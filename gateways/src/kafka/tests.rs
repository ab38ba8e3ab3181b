use std::time::Duration;

use commands::{EventStore, StoreError};
use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    mocking::MockCluster,
    producer::{FutureProducer, FutureRecord, Producer},
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
