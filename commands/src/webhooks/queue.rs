//! What the delivery worker needs to know from the `webhooks` read model,
//! as a port: `commands` never queries read-model tables itself (the read model's
//! crate implements it, as gateways implement `CpmsAdapter`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::CompanyId;
use uuid::Uuid;

/// A subscription that takes deliveries: active, or disabled by the platform
/// or its owner (its deliveries wait for it to be re-enabled). Deactivated
/// subscriptions are not subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The subscription's id.
    pub id: Uuid,
    /// The company whose events it receives.
    pub company: CompanyId,
    /// Its event type filters (`*`, `charge_session.*`, exact types).
    pub event_types: Vec<String>,
    /// Global position of its registration: only later events are delivered.
    pub registered_position: i64,
}

pub use crate::read_model::ReadModelError;

/// The scheduler's and the dispatcher's questions to the `webhooks` read model.
#[async_trait]
pub trait WebhookQueue: Send + Sync {
    /// The global position the read model has applied: the scheduler reads
    /// the log no further, so a subscription is known before the events after it.
    async fn seen_up_to(&self) -> Result<i64, ReadModelError>;

    /// The [`Subscriber`]s of these companies.
    async fn subscriptions_for(&self, companies: &[CompanyId]) -> Result<Vec<Subscriber>, ReadModelError>;

    /// Up to `limit` deliveries worth attempting at `now`, soonest due first:
    /// pending, due by `now`, of an active subscription, carrying a log event
    /// (tests are sent once, by their route), and the oldest pending one of
    /// their (subscription, source stream), so each entity's events arrive in
    /// order. The dispatcher re-checks each against its own stream.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>, ReadModelError>;
}
