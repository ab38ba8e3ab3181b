//! The `WebhookDelivery` aggregate (stream `webhook_delivery-<id>`): one event
//! (or a test) delivered to one subscription, every attempt an event.

use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{error::RefusalKind, Aggregate, CompanyId, DomainEvent};

/// A delivery's refusals: none. A schedule of a scheduled delivery and a
/// stale or repeated attempt change nothing instead of failing, so workers
/// racing on one delivery never see an error. The type has no values; it
/// exists so a refusal added later has its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {}

impl fmt::Display for DeliveryError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl std::error::Error for DeliveryError {}

impl DeliveryError {
    /// How a transport should answer this refusal (never called: no values).
    pub fn kind(&self) -> RefusalKind<'static> {
        match *self {}
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not scheduled.
    #[default]
    None,
    /// Waiting for its (next) attempt.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Given up (410, or the retries ran out).
    Failed,
}

/// A delivery's state.
#[derive(Debug, Clone, Default)]
pub struct DeliveryState {
    /// Where the delivery stands; `None` until it is scheduled.
    pub status: DeliveryStatus,
    /// What is delivered.
    pub scheduled: Option<DeliveryScheduled>,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// One event (or a test) to deliver to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryScheduled {
    /// Delivery id.
    pub delivery_id: Uuid,
    /// Subscription the event is delivered to.
    #[schemars(description = "Subscription.")]
    pub subscription_id: Uuid,
    /// Company of the subscription, and of the event delivered.
    #[schemars(description = "Owner.")]
    pub company_id: CompanyId,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    /// The event delivered (its id), or none for a test.
    pub event_id: Option<Uuid>,
    /// Its type (`webhook.test` for a test).
    pub event_type: String,
    /// Its stream: deliveries of one stream go in order.
    pub source_stream: String,
    /// Its global position (0 for a test).
    pub position: i64,
    /// When the first attempt is due.
    pub due_at: DateTime<Utc>,
    /// Platform clock when the delivery was scheduled.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// One attempt and what the endpoint said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryAttempted {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// HTTP status, when the endpoint answered.
    pub status_code: Option<u16>,
    /// Round trip, ms.
    pub duration_ms: u64,
    /// The start of the answer's body (at most 512 characters).
    pub response_excerpt: Option<String>,
    /// Why it failed without an answer (timeout, connection refused, refused target).
    pub error: Option<String>,
    /// When the next attempt is due; none when this was the last.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Platform clock once the attempt ended (answered, failed or timed out).
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A delivery was given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryAbandoned {
    /// `gone` (410) or `retries_exhausted`.
    pub reason: String,
    /// Time of the last attempt, the one after which the delivery was given up.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// Everything that happens to a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum DeliveryEvent {
    /// See [`DeliveryScheduled`].
    #[serde(rename = "webhook_delivery.scheduled")]
    Scheduled(DeliveryScheduled),
    /// An attempt failed (the endpoint answered non-2xx, or did not answer).
    #[serde(rename = "webhook_delivery.attempt_failed")]
    AttemptFailed(DeliveryAttempted),
    /// The endpoint answered 2xx.
    #[serde(rename = "webhook_delivery.succeeded")]
    Succeeded(DeliveryAttempted),
    /// See [`DeliveryAbandoned`].
    #[serde(rename = "webhook_delivery.abandoned")]
    Abandoned(DeliveryAbandoned),
}

impl DomainEvent for DeliveryEvent {
    const TYPES: &'static [&'static str] = &[
        "webhook_delivery.scheduled",
        "webhook_delivery.attempt_failed",
        "webhook_delivery.succeeded",
        "webhook_delivery.abandoned",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Scheduled(_) => "webhook_delivery.scheduled",
            Self::AttemptFailed(_) => "webhook_delivery.attempt_failed",
            Self::Succeeded(_) => "webhook_delivery.succeeded",
            Self::Abandoned(_) => "webhook_delivery.abandoned",
        }
    }
}

/// What can be asked of a delivery.
#[derive(Debug, Clone)]
pub enum DeliveryCommand {
    /// Schedule it.
    Schedule(DeliveryScheduled),
    /// Record an attempt: 2xx succeeds; otherwise it failed, and with no next
    /// attempt (or `gone`) the delivery is abandoned.
    Record {
        /// The attempt.
        attempt: DeliveryAttempted,
        /// The endpoint answered 410 Gone.
        gone: bool,
    },
}

/// The delivery aggregate.
#[derive(Debug)]
pub struct WebhookDelivery;

impl WebhookDelivery {
    /// `webhook_delivery-<id>`.
    pub fn stream_id(id: Uuid) -> String {
        format!("{}-{id}", Self::CATEGORY)
    }
}

impl Aggregate for WebhookDelivery {
    const CATEGORY: &'static str = "webhook_delivery";
    type Error = DeliveryError;
    type State = DeliveryState;
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;

    fn decide(s: &DeliveryState, command: DeliveryCommand) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        match command {
            DeliveryCommand::Schedule(d) => Ok(match s.status {
                DeliveryStatus::None => vec![DeliveryEvent::Scheduled(d)],
                _ => vec![],
            }),
            DeliveryCommand::Record { attempt, gone } => {
                if s.status != DeliveryStatus::Pending || attempt.attempt != s.attempts + 1 {
                    return Ok(vec![]); // finished, or another worker recorded this attempt
                }
                let ok = attempt.status_code.is_some_and(|c| (200..300).contains(&c));
                if ok {
                    return Ok(vec![DeliveryEvent::Succeeded(attempt)]);
                }
                let at = attempt.at;
                let last = gone || attempt.next_attempt_at.is_none();
                let mut events = vec![DeliveryEvent::AttemptFailed(DeliveryAttempted {
                    next_attempt_at: if last { None } else { attempt.next_attempt_at },
                    ..attempt
                })];
                if last {
                    let reason = if gone { "gone" } else { "retries_exhausted" };
                    events.push(DeliveryEvent::Abandoned(DeliveryAbandoned { reason: reason.into(), at }));
                }
                Ok(events)
            }
        }
    }

    fn evolve(mut s: DeliveryState, event: &DeliveryEvent) -> DeliveryState {
        match event {
            DeliveryEvent::Scheduled(d) => {
                s.status = DeliveryStatus::Pending;
                s.next_attempt_at = Some(d.due_at);
                s.scheduled = Some(d.clone());
            }
            DeliveryEvent::AttemptFailed(a) => {
                s.attempts = a.attempt;
                s.next_attempt_at = a.next_attempt_at;
            }
            DeliveryEvent::Succeeded(a) => {
                s.attempts = a.attempt;
                s.status = DeliveryStatus::Succeeded;
                s.next_attempt_at = None;
            }
            DeliveryEvent::Abandoned(_) => {
                s.status = DeliveryStatus::Failed;
                s.next_attempt_at = None;
            }
        }
        s
    }
}
