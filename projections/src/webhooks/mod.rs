//! The `webhooks` read model: subscriptions, deliveries and every attempt, for
//! the API and for the delivery worker (what is due, head of line per stream:
//! [`queue`]).

pub mod queue;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::RecordedEvent;
use domain::{
    webhook::{DeliveryEvent as D, WebhookDelivery, WebhookEvent as W, WebhookSubscription},
    Aggregate,
};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

pub use self::queue::ReadModelQueue;
use crate::runtime::{ProjectionError, Projector};

/// Name of the projector.
pub const NAME: &str = "webhooks";

/// Projects `webhook.*` and `webhook_delivery.*` into `rm_webhooks`.
#[derive(Debug, Default)]
pub struct WebhooksProjector;

fn id_of(event: &RecordedEvent) -> Uuid {
    event.stream_id.split_once('-').and_then(|(_, id)| Uuid::parse_str(id).ok()).unwrap_or_default()
}

#[async_trait]
impl Projector for WebhooksProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> &'static str {
        "rm_webhooks"
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let decode_error =
            |e: domain::EventDecodeError| ProjectionError::Decode { position: event.position, reason: e.to_string() };
        let id = id_of(event);
        let at = event.recorded_at;
        if event.category() == WebhookSubscription::CATEGORY {
            let status = |s: &'static str, reason: Option<String>| {
                sqlx::query("UPDATE subscriptions SET status = $2, disabled_reason = $3, updated_at = $4 WHERE id = $1")
                    .bind(id)
                    .bind(s)
                    .bind(reason)
                    .bind(at)
            };
            match event.decode::<W>().map_err(decode_error)? {
                W::Registered(r) => {
                    sqlx::query(
                        "INSERT INTO subscriptions (id, company_id, url, event_types, description, status, secret_id, \
                         registered_position, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $8) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(r.company_id.as_uuid())
                    .bind(&r.url)
                    .bind(&r.event_types)
                    .bind(&r.description)
                    .bind(r.secret_id)
                    .bind(event.position)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
                W::Updated(u) => {
                    sqlx::query(
                        "UPDATE subscriptions SET url = $2, event_types = $3, description = $4, updated_at = $5 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&u.url)
                    .bind(&u.event_types)
                    .bind(&u.description)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
                W::Enabled(_) => {
                    status("active", None).execute(&mut *conn).await?;
                }
                W::Disabled(d) => {
                    status("disabled", Some(d.reason)).execute(&mut *conn).await?;
                }
                W::Deactivated(_) => {
                    status("deactivated", None).execute(&mut *conn).await?;
                }
                W::SecretRotated(r) => {
                    sqlx::query(
                        "UPDATE subscriptions SET secret_id = $2, previous_secret_id = $3, previous_expires_at = $4, \
                         updated_at = $5 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(r.secret_id)
                    .bind(r.previous_secret_id)
                    .bind(r.previous_expires_at)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        } else if event.category() == WebhookDelivery::CATEGORY {
            match event.decode::<D>().map_err(decode_error)? {
                D::Scheduled(d) => {
                    sqlx::query(
                        "INSERT INTO deliveries (id, subscription_id, company_id, message_id, event_id, event_type, source_stream, \
                         position, status, next_attempt_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(d.subscription_id)
                    .bind(d.company_id.as_uuid())
                    .bind(&d.message_id)
                    .bind(d.event_id)
                    .bind(&d.event_type)
                    .bind(&d.source_stream)
                    .bind(d.position)
                    .bind(d.due_at)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
                D::AttemptFailed(a) | D::Succeeded(a) => {
                    let ok = event.event_type == "webhook_delivery.succeeded";
                    sqlx::query(
                        "INSERT INTO attempts (delivery_id, attempt, subscription_id, company_id, at, outcome, status_code, \
                         duration_ms, response_excerpt, error, next_attempt_at) \
                         SELECT $1, $2, subscription_id, company_id, $3, $4, $5, $6, $7, $8, $9 FROM deliveries WHERE id = $1 \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(a.attempt as i32)
                    .bind(a.at)
                    .bind(if ok { "succeeded" } else { "failed" })
                    .bind(a.status_code.map(i32::from))
                    .bind(a.duration_ms as i64)
                    .bind(&a.response_excerpt)
                    .bind(&a.error)
                    .bind(a.next_attempt_at)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "UPDATE deliveries SET attempts = $2, status = $3, next_attempt_at = $4, updated_at = $5 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(a.attempt as i32)
                    .bind(if ok { "succeeded" } else { "pending" })
                    .bind(if ok { None } else { a.next_attempt_at })
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
                D::Abandoned(_) => {
                    sqlx::query("UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// A subscription as listed (no secret).
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// The subscription's id (its stream is `webhook-<id>`).
    pub id: Uuid,
    /// Endpoint URL the deliveries are POSTed to (http or https).
    pub url: String,
    /// Event type filters (`*`, `charge_session.*`, `payment_intent.captured`), 1 to 50.
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// `active`, `disabled` (by the platform, or paused) or `deactivated`.
    pub status: String,
    /// Why it is disabled: `gone`, `sustained_failure`, `paused`.
    pub disabled_reason: Option<String>,
    /// When the previous secret stops signing (after a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When the subscription was registered (log time of its first event).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const SUBSCRIPTION_COLUMNS: &str = "id, url, event_types, description, status, disabled_reason, \
     previous_expires_at AS previous_secret_expires_at, created_at, updated_at";

/// One subscription of a company.
pub async fn subscription(pool: &PgPool, company: Uuid, id: Uuid) -> Result<Option<SubscriptionView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM rm_webhooks.subscriptions WHERE company_id = $1 AND id = $2"
    ))
    .bind(company)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A company's subscriptions, newest first, after a `(created_at, id)` cursor.
pub async fn subscriptions(
    pool: &PgPool,
    company: Uuid,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<SubscriptionView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM rm_webhooks.subscriptions WHERE company_id = $1 \
         AND ($2::text IS NULL OR status = $2) \
         AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(company)
    .bind(status)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One attempt of one delivery.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// The delivery this attempt belongs to (one per event and subscription).
    pub delivery_id: Uuid,
    /// The `webhook-id` header (the same on every attempt of a delivery).
    pub message_id: String,
    /// Event type delivered.
    pub event_type: String,
    /// The event delivered (none for a test).
    pub event_id: Option<Uuid>,
    /// 1 for the first.
    pub attempt: i32,
    /// When the attempt finished (the endpoint answered, or the request failed).
    pub at: DateTime<Utc>,
    /// `succeeded` or `failed`.
    pub outcome: String,
    /// HTTP status, when the endpoint answered.
    pub status_code: Option<i32>,
    /// Round trip, ms.
    pub duration_ms: i64,
    /// Start of the answer's body.
    pub response_excerpt: Option<String>,
    /// Why there was no answer.
    pub error: Option<String>,
    /// When the next attempt is due (none: succeeded or given up).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The delivery's status now: `pending`, `succeeded`, `failed`.
    pub delivery_status: String,
}

/// Attempts of a subscription's deliveries, newest first, after an `(at, delivery)` cursor.
pub async fn attempts(
    pool: &PgPool,
    company: Uuid,
    subscription: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AttemptView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.delivery_id, d.message_id, d.event_type, d.event_id, a.attempt, a.at, a.outcome, a.status_code, \
         a.duration_ms, a.response_excerpt, a.error, a.next_attempt_at, d.status AS delivery_status \
         FROM rm_webhooks.attempts a JOIN rm_webhooks.deliveries d ON d.id = a.delivery_id \
         WHERE a.company_id = $1 AND a.subscription_id = $2 \
         AND ($3::timestamptz IS NULL OR (a.at, a.delivery_id) < ($3, $4)) \
         ORDER BY a.at DESC, a.delivery_id DESC, a.attempt DESC LIMIT $5",
    )
    .bind(company)
    .bind(subscription)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}
