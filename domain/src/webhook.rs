//! Webhooks: a company's subscriptions (stream `webhook-<id>`) and the
//! delivery of one event to one subscription (stream `webhook_delivery-<id>`),
//! every attempt an event.
//!
//! Secrets are not in the log (it is published to analysts): a subscription's
//! events name its secrets by id and fingerprint; the secret material lives in
//! a table only the platform reads (ADR 0012).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{error::Validator, Aggregate, CompanyId, DomainError, DomainEvent};

/// Event-type filters: `*`, `charge_session.*` or an exact type.
pub fn filter_matches(filter: &str, event_type: &str) -> bool {
    match filter.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => event_type.starts_with(prefix),
        None => filter == event_type,
    }
}

/// Whether a filter is well formed: `*`, `<category>.*`, or `<category>.<name>`
/// in lower case, and matches at least one of `known` types.
pub fn filter_valid(filter: &str, known: &[&str]) -> bool {
    let shape = filter == "*"
        || filter.split_once('.').is_some_and(|(category, rest)| {
            let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            word(category) && (rest == "*" || word(rest))
        });
    shape && known.iter().any(|t| filter_matches(filter, t))
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Not registered.
    #[default]
    None,
    /// Receiving deliveries.
    Active,
    /// Stopped by the platform (410 Gone, sustained failure); re-enabled by an update.
    Disabled,
    /// Deactivated by its owner (DELETE); the history stays.
    Deactivated,
}

/// A subscription's state.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionState {
    /// Owner.
    pub company_id: Option<CompanyId>,
    /// Status.
    pub status: SubscriptionStatus,
    /// Target.
    pub url: String,
    /// Filters.
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// The signing secret.
    pub secret_id: Option<Uuid>,
    /// The previous secret, signing too until it expires.
    pub previous_secret: Option<(Uuid, DateTime<Utc>)>,
}

/// What can be asked of a subscription.
#[derive(Debug, Clone)]
pub enum SubscriptionCommand {
    /// Register (the URL was checked by the caller: http(s), a permitted host).
    Register(WebhookRegistered),
    /// Change URL, filters, description, and/or re-enable (`active: true`) or pause (`false`).
    Update {
        /// New URL.
        url: Option<String>,
        /// New filters.
        event_types: Option<Vec<String>>,
        /// New description (`Some("")` clears it).
        description: Option<String>,
        /// Active or not.
        active: Option<bool>,
        /// Clock.
        at: DateTime<Utc>,
    },
    /// A new secret; the current one keeps signing until `previous_expires_at`.
    RotateSecret(WebhookSecretRotated),
    /// DELETE.
    Deactivate {
        /// Clock.
        at: DateTime<Utc>,
    },
    /// The platform stops delivering.
    Disable(WebhookDisabled),
}

/// A subscription was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookRegistered {
    /// Subscription id.
    pub subscription_id: Uuid,
    /// Owner.
    pub company_id: CompanyId,
    /// Target (http or https).
    pub url: String,
    /// Filters (`*`, `charge_session.*`, `payment_intent.captured`).
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Id of the signing secret (the secret itself is not in the log).
    pub secret_id: Uuid,
    /// First 8 hex digits of the secret's SHA-256, to tell secrets apart.
    pub secret_fingerprint: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// URL, filters or description changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookUpdated {
    /// Target.
    pub url: String,
    /// Filters.
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A status change with its time (enabled, paused, deactivated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookAt {
    /// When.
    pub at: DateTime<Utc>,
}

/// The platform stopped delivering to the subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookDisabled {
    /// `gone` (the endpoint answered 410), `sustained_failure` (a delivery
    /// exhausted its retries), or `paused` (its owner).
    pub reason: String,
    /// Detail.
    pub detail: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A new signing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSecretRotated {
    /// The new secret's id.
    pub secret_id: Uuid,
    /// Its fingerprint.
    pub secret_fingerprint: String,
    /// The secret it replaces, still signing until `previous_expires_at`.
    pub previous_secret_id: Uuid,
    /// End of the grace period.
    pub previous_expires_at: DateTime<Utc>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Everything that happens to a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum WebhookEvent {
    /// See [`WebhookRegistered`].
    #[serde(rename = "webhook.registered")]
    Registered(WebhookRegistered),
    /// See [`WebhookUpdated`].
    #[serde(rename = "webhook.updated")]
    Updated(WebhookUpdated),
    /// Delivering again (after being disabled or paused).
    #[serde(rename = "webhook.enabled")]
    Enabled(WebhookAt),
    /// See [`WebhookDisabled`].
    #[serde(rename = "webhook.disabled")]
    Disabled(WebhookDisabled),
    /// See [`WebhookSecretRotated`].
    #[serde(rename = "webhook.secret_rotated")]
    SecretRotated(WebhookSecretRotated),
    /// Deactivated by its owner.
    #[serde(rename = "webhook.deactivated")]
    Deactivated(WebhookAt),
}

impl DomainEvent for WebhookEvent {
    const TYPES: &'static [&'static str] = &[
        "webhook.registered",
        "webhook.updated",
        "webhook.enabled",
        "webhook.disabled",
        "webhook.secret_rotated",
        "webhook.deactivated",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Registered(_) => "webhook.registered",
            Self::Updated(_) => "webhook.updated",
            Self::Enabled(_) => "webhook.enabled",
            Self::Disabled(_) => "webhook.disabled",
            Self::SecretRotated(_) => "webhook.secret_rotated",
            Self::Deactivated(_) => "webhook.deactivated",
        }
    }
}

fn check_fields(v: &mut Validator, url: &str, event_types: &[String], description: Option<&str>) {
    let lower = url.to_ascii_lowercase();
    v.check(
        (lower.starts_with("https://") || lower.starts_with("http://")) && url.len() <= 2048,
        "url",
        "must be an http:// or https:// URL of at most 2048 characters",
    );
    v.check(!event_types.is_empty() && event_types.len() <= 50, "eventTypes", "must list 1 to 50 filters");
    v.check(description.is_none_or(|d| d.chars().count() <= 500), "description", "must be at most 500 characters");
}

/// The subscription aggregate.
#[derive(Debug)]
pub struct WebhookSubscription;

impl WebhookSubscription {
    /// `webhook-<id>`.
    pub fn stream_id(id: Uuid) -> String {
        format!("{}-{id}", Self::CATEGORY)
    }
}

impl Aggregate for WebhookSubscription {
    const CATEGORY: &'static str = "webhook";
    type Error = DomainError;
    type State = SubscriptionState;
    type Command = SubscriptionCommand;
    type Event = WebhookEvent;

    fn decide(s: &SubscriptionState, command: SubscriptionCommand) -> Result<Vec<WebhookEvent>, DomainError> {
        use SubscriptionStatus as S;
        let exists = s.status != S::None;
        match command {
            SubscriptionCommand::Register(r) => {
                if exists {
                    return Err(DomainError::AlreadyExists("the subscription exists".into()));
                }
                let mut v = Validator::default();
                check_fields(&mut v, &r.url, &r.event_types, r.description.as_deref());
                v.finish()?;
                Ok(vec![WebhookEvent::Registered(r)])
            }
            _ if !exists => Err(DomainError::NotFound("webhook")),
            SubscriptionCommand::Update { url, event_types, description, active, at } => {
                if s.status == S::Deactivated {
                    return Err(DomainError::InvalidState("the subscription is deactivated".into()));
                }
                let url = url.unwrap_or_else(|| s.url.clone());
                let event_types = event_types.unwrap_or_else(|| s.event_types.clone());
                let description = match description {
                    Some(d) if d.is_empty() => None,
                    Some(d) => Some(d),
                    None => s.description.clone(),
                };
                let mut v = Validator::default();
                check_fields(&mut v, &url, &event_types, description.as_deref());
                v.finish()?;
                let mut events = Vec::new();
                if url != s.url || event_types != s.event_types || description != s.description {
                    events.push(WebhookEvent::Updated(WebhookUpdated { url, event_types, description, at }));
                }
                match (active, s.status) {
                    (Some(true), S::Disabled) => events.push(WebhookEvent::Enabled(WebhookAt { at })),
                    (Some(false), S::Active) => events.push(WebhookEvent::Disabled(WebhookDisabled {
                        reason: "paused".into(),
                        detail: Some("paused by its owner".into()),
                        at,
                    })),
                    _ => {}
                }
                Ok(events)
            }
            SubscriptionCommand::RotateSecret(r) => {
                if s.status == S::Deactivated {
                    return Err(DomainError::InvalidState("the subscription is deactivated".into()));
                }
                if Some(r.previous_secret_id) != s.secret_id {
                    return Err(DomainError::InvalidState("the secret changed meanwhile; try again".into()));
                }
                Ok(vec![WebhookEvent::SecretRotated(r)])
            }
            SubscriptionCommand::Deactivate { at } => Ok(match s.status {
                S::Deactivated => vec![],
                _ => vec![WebhookEvent::Deactivated(WebhookAt { at })],
            }),
            SubscriptionCommand::Disable(d) => Ok(match s.status {
                S::Active => vec![WebhookEvent::Disabled(d)],
                _ => vec![],
            }),
        }
    }

    fn evolve(mut s: SubscriptionState, event: &WebhookEvent) -> SubscriptionState {
        match event {
            WebhookEvent::Registered(r) => {
                s.company_id = Some(r.company_id);
                s.status = SubscriptionStatus::Active;
                s.url = r.url.clone();
                s.event_types = r.event_types.clone();
                s.description = r.description.clone();
                s.secret_id = Some(r.secret_id);
            }
            WebhookEvent::Updated(u) => {
                s.url = u.url.clone();
                s.event_types = u.event_types.clone();
                s.description = u.description.clone();
            }
            WebhookEvent::Enabled(_) => {
                s.status = SubscriptionStatus::Active;
                s.disabled_reason = None;
            }
            WebhookEvent::Disabled(d) => {
                s.status = SubscriptionStatus::Disabled;
                s.disabled_reason = Some(d.reason.clone());
            }
            WebhookEvent::SecretRotated(r) => {
                s.previous_secret = Some((r.previous_secret_id, r.previous_expires_at));
                s.secret_id = Some(r.secret_id);
            }
            WebhookEvent::Deactivated(_) => s.status = SubscriptionStatus::Deactivated,
        }
        s
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
    /// Status.
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
    /// Subscription.
    pub subscription_id: Uuid,
    /// Owner.
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
    /// When.
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
    /// When.
    pub at: DateTime<Utc>,
}

/// A delivery was given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryAbandoned {
    /// `gone` (410) or `retries_exhausted`.
    pub reason: String,
    /// When.
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
    type Error = DomainError;
    type State = DeliveryState;
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;

    fn decide(s: &DeliveryState, command: DeliveryCommand) -> Result<Vec<DeliveryEvent>, DomainError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn registered() -> SubscriptionState {
        let r = WebhookRegistered {
            subscription_id: Uuid::nil(),
            company_id: CompanyId(Uuid::nil()),
            url: "https://example.com/hooks".into(),
            event_types: vec!["charge_session.*".into()],
            description: None,
            secret_id: Uuid::nil(),
            secret_fingerprint: "00000000".into(),
            at: at(),
        };
        let events = WebhookSubscription::decide(&SubscriptionState::default(), SubscriptionCommand::Register(r))
            .unwrap_or_default();
        WebhookSubscription::fold(&events)
    }

    #[test]
    fn filters_match_wildcards_and_exact_types() {
        assert!(filter_matches("*", "terminal.registered"));
        assert!(filter_matches("charge_session.*", "charge_session.settled"));
        assert!(!filter_matches("charge_session.*", "charger.transaction_started"));
        assert!(filter_matches("payment_intent.captured", "payment_intent.captured"));
        assert!(!filter_matches("payment_intent.captured", "payment_intent.captured_more"));
        let known = ["charge_session.settled", "terminal.registered"];
        assert!(filter_valid("charge_session.*", &known));
        assert!(!filter_valid("charge_session.nope", &known));
        assert!(!filter_valid("Charge.*", &known));
        assert!(!filter_valid("charge*", &known));
    }

    #[test]
    fn a_disabled_subscription_is_re_enabled_by_an_update_and_a_deactivated_one_is_final() {
        let s = registered();
        let disabled = WebhookDisabled { reason: "gone".into(), detail: None, at: at() };
        let events =
            WebhookSubscription::decide(&s, SubscriptionCommand::Disable(disabled.clone())).unwrap_or_default();
        let s = events.iter().fold(s, WebhookSubscription::evolve);
        assert_eq!(s.status, SubscriptionStatus::Disabled);
        assert!(WebhookSubscription::decide(&s, SubscriptionCommand::Disable(disabled)).unwrap_or_default().is_empty());
        let update = SubscriptionCommand::Update {
            url: None,
            event_types: None,
            description: None,
            active: Some(true),
            at: at(),
        };
        let events = WebhookSubscription::decide(&s, update.clone()).unwrap_or_default();
        assert_eq!(events, vec![WebhookEvent::Enabled(WebhookAt { at: at() })]);
        let s = events.iter().fold(s, WebhookSubscription::evolve);
        let events = WebhookSubscription::decide(&s, SubscriptionCommand::Deactivate { at: at() }).unwrap_or_default();
        let s = events.iter().fold(s, WebhookSubscription::evolve);
        assert!(matches!(WebhookSubscription::decide(&s, update), Err(DomainError::InvalidState(_))));
    }

    #[test]
    fn a_delivery_succeeds_on_2xx_and_is_abandoned_on_410_or_when_retries_run_out() {
        let scheduled = DeliveryScheduled {
            delivery_id: Uuid::nil(),
            subscription_id: Uuid::nil(),
            company_id: CompanyId(Uuid::nil()),
            message_id: "msg_1".into(),
            event_id: None,
            event_type: "webhook.test".into(),
            source_stream: "webhook-x".into(),
            position: 0,
            due_at: at(),
            at: at(),
        };
        let s = WebhookDelivery::fold(&[DeliveryEvent::Scheduled(scheduled)]);
        let attempt = |n, code, next| DeliveryAttempted {
            attempt: n,
            status_code: code,
            duration_ms: 3,
            response_excerpt: None,
            error: None,
            next_attempt_at: next,
            at: at(),
        };
        let failed = WebhookDelivery::decide(
            &s,
            DeliveryCommand::Record { attempt: attempt(1, Some(500), Some(at())), gone: false },
        )
        .unwrap_or_default();
        assert_eq!(failed.len(), 1);
        let s2 = failed.iter().fold(s.clone(), WebhookDelivery::evolve);
        // A stale repeat of attempt 1 changes nothing.
        assert!(WebhookDelivery::decide(
            &s2,
            DeliveryCommand::Record { attempt: attempt(1, Some(200), None), gone: false }
        )
        .unwrap_or_default()
        .is_empty());
        let ok =
            WebhookDelivery::decide(&s2, DeliveryCommand::Record { attempt: attempt(2, Some(204), None), gone: false })
                .unwrap_or_default();
        assert_eq!(ok[0].event_type(), "webhook_delivery.succeeded");
        let gone = WebhookDelivery::decide(
            &s,
            DeliveryCommand::Record { attempt: attempt(1, Some(410), Some(at())), gone: true },
        )
        .unwrap_or_default();
        assert_eq!(
            gone.iter().map(DomainEvent::event_type).collect::<Vec<_>>(),
            ["webhook_delivery.attempt_failed", "webhook_delivery.abandoned"]
        );
        let last =
            WebhookDelivery::decide(&s, DeliveryCommand::Record { attempt: attempt(1, None, None), gone: false })
                .unwrap_or_default();
        assert_eq!(last.len(), 2);
    }
}
