//! The `WebhookSubscription` aggregate (stream `webhook-<id>`): where a
//! company's events are delivered, with which filters and signing secret.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::{describe, RefusalKind, Validator},
    Aggregate, CompanyId, DomainEvent, FieldError,
};

/// A subscription's refusals, one variant each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// URL, filters or description are invalid.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// No such subscription.
    #[error("webhook not found")]
    NotFound,
    /// `Register` with the id of a subscription that exists.
    #[error("the subscription exists")]
    AlreadyExists,
    /// Deactivated by its owner: final, only its history remains.
    #[error("the subscription is deactivated")]
    Deactivated,
    /// A rotation based on a secret that is no longer the current one (a
    /// concurrent rotation won).
    #[error("the secret changed meanwhile; try again")]
    SecretChanged,
}

impl SubscriptionError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Invalid(fields) => RefusalKind::Validation(fields),
            Self::NotFound => RefusalKind::NotFound,
            Self::AlreadyExists | Self::Deactivated | Self::SecretChanged => RefusalKind::Conflict,
        }
    }
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
    /// Company that registered the subscription; `None` until registered.
    pub company_id: Option<CompanyId>,
    /// Where it stands; `None` until registered, and `Deactivated` is final.
    pub status: SubscriptionStatus,
    /// Endpoint deliveries go to: an http(s) URL of at most 2048 characters.
    pub url: String,
    /// 1 to 50 event type filters (`*`, `charge_session.*` or exact types).
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
        /// Platform clock, recorded on the events the update causes.
        at: DateTime<Utc>,
    },
    /// A new secret; the current one keeps signing until `previous_expires_at`.
    RotateSecret(WebhookSecretRotated),
    /// Deactivate for good (the owner's DELETE); the history stays.
    Deactivate {
        /// Platform clock, recorded on the `webhook.deactivated` event.
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
    /// Company that registered the subscription; only its events are delivered.
    #[schemars(description = "Owner.")]
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
    /// Platform clock when the subscription was registered.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// URL, filters or description changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookUpdated {
    /// Endpoint URL after the change (http or https).
    #[schemars(description = "Target.")]
    pub url: String,
    /// Event type filters after the change (`*`, `charge_session.*` or exact types).
    #[schemars(description = "Filters.")]
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Platform clock when the update was made.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A status change with its time (enabled, paused, deactivated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookAt {
    /// Platform clock when the status changed.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The platform stopped delivering to the subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookDisabled {
    /// `gone` (the endpoint answered 410), `sustained_failure` (a delivery
    /// exhausted its retries), or `paused` (its owner).
    pub reason: String,
    /// The reason in words, e.g. "the endpoint answered 410 Gone"; may be absent.
    #[schemars(description = "Detail.")]
    pub detail: Option<String>,
    /// Platform clock when deliveries stopped.
    #[schemars(description = "When.")]
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
    /// Platform clock when the secret was rotated; the grace period runs from then.
    #[schemars(description = "When.")]
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
    type Error = SubscriptionError;
    type State = SubscriptionState;
    type Command = SubscriptionCommand;
    type Event = WebhookEvent;

    fn decide(s: &SubscriptionState, command: SubscriptionCommand) -> Result<Vec<WebhookEvent>, SubscriptionError> {
        use SubscriptionStatus as S;
        let exists = s.status != S::None;
        match command {
            SubscriptionCommand::Register(r) => {
                if exists {
                    return Err(SubscriptionError::AlreadyExists);
                }
                let mut v = Validator::default();
                check_fields(&mut v, &r.url, &r.event_types, r.description.as_deref());
                v.finish(SubscriptionError::Invalid)?;
                Ok(vec![WebhookEvent::Registered(r)])
            }
            _ if !exists => Err(SubscriptionError::NotFound),
            SubscriptionCommand::Update { url, event_types, description, active, at } => {
                if s.status == S::Deactivated {
                    return Err(SubscriptionError::Deactivated);
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
                v.finish(SubscriptionError::Invalid)?;
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
                    return Err(SubscriptionError::Deactivated);
                }
                if Some(r.previous_secret_id) != s.secret_id {
                    return Err(SubscriptionError::SecretChanged);
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
