//! The relay's other Kafka clients: the health probe and topic creation.

use std::time::Duration;

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    producer::{FutureProducer, Producer},
};

use super::{KafkaConfig, RelayError};

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
