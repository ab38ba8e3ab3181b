//! Webhooks (ADR 0012): subscriptions, and the delivery worker driven by the
//! log, Standard Webhooks style.
//!
//! - The scheduler reads the log from its checkpoint (never ahead of the
//!   `webhooks` read model, so a subscription is known before the events after
//!   it) and schedules one delivery per matching subscription of the event's
//!   company that is not deactivated (a disabled one keeps them for when it is
//!   re-enabled): stream `webhook_delivery-<uuid v5 of subscription and
//!   event>`, so a repeat after a crash schedules nothing twice.
//! - The dispatcher sends due deliveries, only the oldest pending one of each
//!   (subscription, source stream), so each entity's events arrive in order.
//!   Every attempt is an event with the status, duration and the start of the
//!   answer; retries follow the schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
//!   10 h, each ±10 %), never before a `Retry-After`; 410 Gone, or a delivery
//!   that exhausts its retries, disables the subscription.
//! - Headers: `webhook-id` (the same on every attempt), `webhook-timestamp`
//!   (this attempt, Unix seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256
//!   of id.timestamp.body>`, one per live secret, space-separated).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use domain::{
    webhook::{
        filter_matches, DeliveryAttempted, DeliveryCommand, DeliveryScheduled, DeliveryStatus, SubscriptionCommand,
        SubscriptionState, SubscriptionStatus, WebhookDelivery, WebhookDisabled, WebhookRegistered,
        WebhookSecretRotated, WebhookSubscription,
    },
    Aggregate, CompanyId, DomainError,
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    clock::Clock,
    handler::{execute, load, CommandContext, CommandError},
    store::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, StreamWrite},
};

/// The scheduler's checkpoint row.
pub const CHECKPOINT: &str = "webhook_scheduler";

/// The read model the scheduler never runs ahead of (`projections::webhooks::NAME`).
const WEBHOOKS_PROJECTOR: &str = "webhooks";

/// Namespace of delivery ids (uuid v5 of subscription id ‖ event id).
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6f1b_35c2_8d4e_4f0a_9a57_0c1e_77d2_4b19);

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Delays before each retry; after the last, the delivery is given up.
    pub schedule: Vec<Duration>,
    /// Deliveries sent at once.
    pub concurrency: usize,
    /// Redacts bodies before they leave (ADR 0018).
    pub redactor: crate::publication::Redactor,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let (s, m, h) = (Duration::from_secs(1), Duration::from_secs(60), Duration::from_secs(3600));
        Self {
            timeout: Duration::from_secs(15),
            schedule: vec![5 * s, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h],
            concurrency: 16,
            redactor: crate::publication::Redactor::default(),
        }
    }
}

/// What an endpoint answered.
#[derive(Debug, Clone, Default)]
pub struct SendOutcome {
    /// HTTP status, when it answered.
    pub status: Option<u16>,
    /// Round trip.
    pub duration_ms: u64,
    /// Start of the body.
    pub excerpt: Option<String>,
    /// Why there is no answer.
    pub error: Option<String>,
    /// `Retry-After`, when given.
    pub retry_after: Option<Duration>,
}

/// Sends one HTTP request (gateways implement it, with the SSRF guard).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs `body` to `url` with `headers`, within `timeout`.
    async fn send(&self, url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> SendOutcome;
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

/// First 8 hex digits of the secret's SHA-256.
pub fn fingerprint(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..4])
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, or `None` for a
/// malformed secret.
pub fn sign(secret: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{message_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Who acts on a subscription.
#[derive(Debug, Clone)]
pub struct WebhookActor {
    /// Company.
    pub company: CompanyId,
    /// `user:…`, `api-key:…`, `system:webhooks`.
    pub actor: String,
    /// Correlation id.
    pub correlation: Uuid,
}

impl WebhookActor {
    fn context(&self) -> CommandContext {
        CommandContext {
            company_id: self.company.as_uuid(),
            command_id: None,
            request_hash: vec![],
            correlation_id: self.correlation,
            causation_id: None,
            actor: self.actor.clone(),
        }
    }

    fn system(company: CompanyId) -> Self {
        Self { company, actor: "system:webhooks".into(), correlation: Uuid::now_v7() }
    }
}

/// The result of one attempt, as the test route answers it.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// Delivery.
    pub delivery_id: Uuid,
    /// `webhook-id`.
    pub message_id: String,
    /// Whether the endpoint answered 2xx.
    pub succeeded: bool,
    /// The attempt as recorded.
    pub attempt: DeliveryAttempted,
}

/// Webhook subscriptions and their delivery.
#[derive(Clone)]
pub struct Webhooks {
    store: EventStore,
    sender: Arc<dyn WebhookSender>,
    config: WebhookConfig,
    clock: Clock,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("config", &self.config).finish_non_exhaustive()
    }
}

fn excerpt(text: Option<String>) -> Option<String> {
    text.map(|t| t.chars().take(512).collect())
}

impl Webhooks {
    /// The service.
    pub fn new(store: EventStore, sender: Arc<dyn WebhookSender>, config: WebhookConfig, clock: Clock) -> Self {
        Self { store, sender, config, clock }
    }

    /// The clock schedules use.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A subscription of `company` (another company's is not found).
    pub async fn get(&self, company: CompanyId, id: Uuid) -> Result<SubscriptionState, CommandError> {
        let state = load::<WebhookSubscription>(&self.store, &WebhookSubscription::stream_id(id)).await?.state;
        match state.company_id {
            Some(c) if c == company => Ok(state),
            _ => Err(DomainError::NotFound("webhook").into()),
        }
    }

    async fn command(&self, actor: &WebhookActor, id: Uuid, command: SubscriptionCommand) -> Result<i64, CommandError> {
        let executed = execute::<WebhookSubscription, _>(
            &self.store,
            &WebhookSubscription::stream_id(id),
            &actor.context(),
            "webhook",
            command,
            |_, version| json!({ "version": version }),
        )
        .await?;
        Ok(executed.last_position().unwrap_or(0))
    }

    async fn store_secret(&self, company: CompanyId, subscription: Uuid) -> Result<(Uuid, String), StoreError> {
        let (id, secret) = (Uuid::now_v7(), new_secret());
        sqlx::query("INSERT INTO webhook_secrets (id, subscription_id, company_id, secret) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(subscription)
            .bind(company.as_uuid())
            .bind(&secret)
            .execute(self.store.pool())
            .await?;
        Ok((id, secret))
    }

    /// Registers a subscription; returns its id, its secret (shown once) and the
    /// position to wait for.
    pub async fn register(
        &self,
        actor: &WebhookActor,
        url: String,
        event_types: Vec<String>,
        description: Option<String>,
    ) -> Result<(Uuid, String, i64), CommandError> {
        let id = Uuid::now_v7();
        let (secret_id, secret) = self.store_secret(actor.company, id).await?;
        let registered = WebhookRegistered {
            subscription_id: id,
            company_id: actor.company,
            url,
            event_types,
            description,
            secret_id,
            secret_fingerprint: fingerprint(&secret),
            at: self.clock.now(),
        };
        let position = self.command(actor, id, SubscriptionCommand::Register(registered)).await?;
        Ok((id, secret, position))
    }

    /// Changes a subscription (URL, filters, description, active).
    pub async fn update(
        &self,
        actor: &WebhookActor,
        id: Uuid,
        url: Option<String>,
        event_types: Option<Vec<String>>,
        description: Option<String>,
        active: Option<bool>,
    ) -> Result<i64, CommandError> {
        self.get(actor.company, id).await?;
        let at = self.clock.now();
        self.command(actor, id, SubscriptionCommand::Update { url, event_types, description, active, at }).await
    }

    /// A new secret; the old one keeps signing for `grace`. Returns the new
    /// secret (shown once) and the position to wait for.
    pub async fn rotate_secret(
        &self,
        actor: &WebhookActor,
        id: Uuid,
        grace: Duration,
    ) -> Result<(String, DateTime<Utc>, i64), CommandError> {
        let state = self.get(actor.company, id).await?;
        let previous = state.secret_id.ok_or(DomainError::NotFound("webhook"))?;
        let (secret_id, secret) = self.store_secret(actor.company, id).await?;
        let now = self.clock.now();
        let expires = now + chrono::Duration::from_std(grace).unwrap_or_default();
        let rotated = WebhookSecretRotated {
            secret_id,
            secret_fingerprint: fingerprint(&secret),
            previous_secret_id: previous,
            previous_expires_at: expires,
            at: now,
        };
        let position = self.command(actor, id, SubscriptionCommand::RotateSecret(rotated)).await?;
        Ok((secret, expires, position))
    }

    /// Deactivates (DELETE): no more deliveries; the history stays.
    pub async fn deactivate(&self, actor: &WebhookActor, id: Uuid) -> Result<i64, CommandError> {
        self.get(actor.company, id).await?;
        self.command(actor, id, SubscriptionCommand::Deactivate { at: self.clock.now() }).await
    }

    /// The secrets that sign now: the current one, and the previous one within its grace.
    async fn signing_secrets(&self, state: &SubscriptionState) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<Uuid> = state.secret_id.into_iter().collect();
        if let Some((previous, until)) = state.previous_secret {
            if until > self.clock.now() {
                ids.push(previous);
            }
        }
        let rows = sqlx::query("SELECT id, secret FROM webhook_secrets WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(self.store.pool())
            .await?;
        // Current first.
        let mut secrets = Vec::new();
        for id in ids {
            if let Some(row) = rows.iter().find(|r| r.try_get::<Uuid, _>("id").ok() == Some(id)) {
                secrets.push(row.try_get::<String, _>("secret")?);
            }
        }
        Ok(secrets)
    }

    async fn append_delivery(
        &self,
        id: Uuid,
        expected: ExpectedVersion,
        events: &[domain::webhook::DeliveryEvent],
        company: CompanyId,
    ) -> Result<bool, StoreError> {
        let write = StreamWrite {
            stream_id: WebhookDelivery::stream_id(id),
            expected,
            prev_hash: None,
            events: events.iter().map(NewEvent::from_domain).collect(),
            metadata: Metadata {
                company_id: Some(company.as_uuid()),
                correlation_id: id,
                causation_id: None,
                actor: "system:webhooks".into(),
                command_id: None,
            },
        };
        match self.store.append(&[write], None).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends a signed `webhook.test` event now: one attempt, no retries.
    pub async fn send_test(&self, actor: &WebhookActor, id: Uuid) -> Result<AttemptResult, CommandError> {
        let state = self.get(actor.company, id).await?;
        if state.status == SubscriptionStatus::Deactivated {
            return Err(DomainError::InvalidState("the subscription is deactivated".into()).into());
        }
        let delivery_id = Uuid::now_v7();
        let now = self.clock.now();
        let scheduled = DeliveryScheduled {
            delivery_id,
            subscription_id: id,
            company_id: actor.company,
            message_id: format!("msg_{}", delivery_id.simple()),
            event_id: None,
            event_type: "webhook.test".into(),
            source_stream: format!("webhook_test-{delivery_id}"),
            position: 0,
            due_at: now,
            at: now,
        };
        let body = json!({
            "type": "webhook.test",
            "timestamp": now,
            "data": {"subscriptionId": id, "message": "A test event from chargeledger."},
        });
        self.append_delivery(
            delivery_id,
            ExpectedVersion::NoStream,
            &[domain::webhook::DeliveryEvent::Scheduled(scheduled.clone())],
            actor.company,
        )
        .await?;
        let (attempt, outcome) = self.attempt(&state, &scheduled, 1, &body, false).await?;
        let events = WebhookDelivery::decide(
            &WebhookDelivery::fold(&[domain::webhook::DeliveryEvent::Scheduled(scheduled.clone())]),
            DeliveryCommand::Record { attempt: attempt.clone(), gone: false },
        )?;
        self.append_delivery(delivery_id, ExpectedVersion::Exact(1), &events, actor.company).await?;
        let succeeded = outcome.status.is_some_and(|c| (200..300).contains(&c));
        Ok(AttemptResult { delivery_id, message_id: scheduled.message_id, succeeded, attempt })
    }

    /// Signs and sends one attempt. `retry` says whether a failure gets a next attempt.
    async fn attempt(
        &self,
        subscription: &SubscriptionState,
        delivery: &DeliveryScheduled,
        number: u32,
        body: &Value,
        retry: bool,
    ) -> Result<(DeliveryAttempted, SendOutcome), StoreError> {
        let body = serde_json::to_vec(body).unwrap_or_default();
        // The signature's timestamp is the real time: receivers check it against theirs.
        let timestamp = Utc::now().timestamp();
        let signatures: Vec<String> = self
            .signing_secrets(subscription)
            .await?
            .iter()
            .filter_map(|s| sign(s, &delivery.message_id, timestamp, &body))
            .collect();
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "chargeledger-webhooks/1".to_owned()),
            ("webhook-id".to_owned(), delivery.message_id.clone()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-signature".to_owned(), signatures.join(" ")),
        ];
        let outcome = self.sender.send(&subscription.url, &headers, body, self.config.timeout).await;
        let now = self.clock.now();
        let next = if retry && !outcome.status.is_some_and(|c| (200..300).contains(&c)) {
            self.config.schedule.get(number as usize - 1).map(|delay| {
                let jitter = rand::random::<f64>() * 0.2 + 0.9;
                let delay = delay.mul_f64(jitter).max(outcome.retry_after.unwrap_or_default());
                now + chrono::Duration::from_std(delay).unwrap_or_default()
            })
        } else {
            None
        };
        let attempt = DeliveryAttempted {
            attempt: number,
            status_code: outcome.status,
            duration_ms: outcome.duration_ms,
            response_excerpt: excerpt(outcome.excerpt.clone()),
            error: outcome.error.clone(),
            next_attempt_at: next,
            at: now,
        };
        Ok((attempt, outcome))
    }

    /// Schedules deliveries for the events after the scheduler's checkpoint
    /// (never past the `webhooks` read model). Returns how many events were read.
    pub async fn schedule_new(&self) -> Result<usize, CommandError> {
        let pool = self.store.pool();
        let after = self.store.checkpoint(CHECKPOINT).await?;
        let known = self.store.checkpoint(WEBHOOKS_PROJECTOR).await?;
        let events: Vec<_> =
            self.store.read_all(after, 500).await?.into_iter().take_while(|e| e.position <= known).collect();
        let Some(last) = events.last().map(|e| e.position) else { return Ok(0) };
        let companies: Vec<Uuid> = events.iter().filter_map(|e| e.company_id()).collect();
        let rows = sqlx::query(
            "SELECT id, company_id, event_types, registered_position FROM rm_webhooks.subscriptions \
             WHERE status IN ('active', 'disabled') AND company_id = ANY($1)",
        )
        .bind(&companies)
        .fetch_all(pool)
        .await
        .map_err(StoreError::Database)?;
        let subscriptions: Vec<(Uuid, Uuid, Vec<String>, i64)> = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.try_get("id").ok()?,
                    r.try_get("company_id").ok()?,
                    r.try_get("event_types").ok()?,
                    r.try_get("registered_position").ok()?,
                ))
            })
            .collect();
        for event in &events {
            let category = event.category();
            if category == WebhookDelivery::CATEGORY || category == WebhookSubscription::CATEGORY {
                continue;
            }
            let Some(company) = event.company_id() else { continue };
            for (subscription, _, _, _) in subscriptions.iter().filter(|(_, c, filters, registered)| {
                *c == company
                    && *registered < event.position
                    && filters.iter().any(|f| filter_matches(f, &event.event_type))
            }) {
                let mut name = subscription.as_bytes().to_vec();
                name.extend_from_slice(event.event_id.as_bytes());
                let delivery_id = Uuid::new_v5(&DELIVERY_NAMESPACE, &name);
                let scheduled = DeliveryScheduled {
                    delivery_id,
                    subscription_id: *subscription,
                    company_id: CompanyId(company),
                    message_id: format!("msg_{}", delivery_id.simple()),
                    event_id: Some(event.event_id),
                    event_type: event.event_type.clone(),
                    source_stream: event.stream_id.clone(),
                    position: event.position,
                    due_at: self.clock.now(),
                    at: self.clock.now(),
                };
                // A repeat after a crash finds the stream and schedules nothing.
                self.append_delivery(
                    delivery_id,
                    ExpectedVersion::NoStream,
                    &[domain::webhook::DeliveryEvent::Scheduled(scheduled)],
                    CompanyId(company),
                )
                .await?;
            }
        }
        self.store.advance_checkpoint(CHECKPOINT, last).await?;
        Ok(events.len())
    }

    /// Sends the due deliveries: the oldest pending one of each (subscription,
    /// stream), of active subscriptions. Returns how many attempts were made.
    pub async fn dispatch_due(&self) -> Result<usize, CommandError> {
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT d.id FROM rm_webhooks.deliveries d JOIN rm_webhooks.subscriptions s ON s.id = d.subscription_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND s.status = 'active' AND d.event_id IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM rm_webhooks.deliveries e WHERE e.subscription_id = d.subscription_id \
                               AND e.source_stream = d.source_stream AND e.status = 'pending' AND e.position < d.position) \
             ORDER BY d.next_attempt_at LIMIT $2",
        )
        .bind(self.clock.now())
        .bind(self.config.concurrency as i64 * 4)
        .fetch_all(self.store.pool())
        .await
        .map_err(StoreError::Database)?;
        let mut attempted = 0;
        for chunk in due.chunks(self.config.concurrency.max(1)) {
            let results = futures::future::join_all(chunk.iter().map(|id| self.deliver(*id))).await;
            for (id, result) in chunk.iter().zip(results) {
                match result {
                    Ok(true) => attempted += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(delivery = %id, %error, "webhook delivery failed to run; it stays due")
                    }
                }
            }
        }
        Ok(attempted)
    }

    /// One attempt of one delivery, if it is still due (by its own stream, not
    /// the read model) and no other worker holds its lease.
    async fn deliver(&self, id: Uuid) -> Result<bool, CommandError> {
        // A lease (not a held connection) keeps other workers off this delivery
        // for the attempt's timeout; it is released when the outcome is recorded.
        let holder = Uuid::now_v7();
        let lease = self.config.timeout + Duration::from_secs(30);
        let leased = sqlx::query(
            "INSERT INTO webhook_leases (delivery_id, holder, until) VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
             ON CONFLICT (delivery_id) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
               WHERE webhook_leases.until < now() RETURNING 1",
        )
        .bind(id)
        .bind(holder)
        .bind(lease.as_millis() as i64)
        .fetch_optional(self.store.pool())
        .await
        .map_err(StoreError::Database)?;
        if leased.is_none() {
            return Ok(false);
        }
        let result = self.attempt_leased(id).await;
        sqlx::query("DELETE FROM webhook_leases WHERE delivery_id = $1 AND holder = $2")
            .bind(id)
            .bind(holder)
            .execute(self.store.pool())
            .await
            .map_err(StoreError::Database)?;
        result
    }

    async fn attempt_leased(&self, id: Uuid) -> Result<bool, CommandError> {
        let loaded = load::<WebhookDelivery>(&self.store, &WebhookDelivery::stream_id(id)).await?;
        let state = loaded.state;
        let Some(scheduled) = state.scheduled.clone() else { return Ok(false) };
        // Tests are sent by their route, once; the dispatcher never retries them.
        if scheduled.event_id.is_none()
            || state.status != DeliveryStatus::Pending
            || state.next_attempt_at.is_none_or(|t| t > self.clock.now())
        {
            return Ok(false);
        }
        let subscription =
            load::<WebhookSubscription>(&self.store, &WebhookSubscription::stream_id(scheduled.subscription_id))
                .await?
                .state;
        if subscription.status != SubscriptionStatus::Active {
            return Ok(false);
        }
        let body = match scheduled.event_id {
            Some(event_id) => {
                let row =
                    sqlx::query("SELECT event_type, payload, recorded_at, stream_id FROM events WHERE event_id = $1")
                        .bind(event_id)
                        .fetch_optional(self.store.pool())
                        .await
                        .map_err(StoreError::Database)?;
                let Some(row) = row else { return Ok(false) };
                let db = StoreError::Database;
                crate::publication::webhook_body(
                    &self.config.redactor,
                    &row.try_get::<String, _>("event_type").map_err(db)?,
                    event_id,
                    row.try_get("recorded_at").map_err(db)?,
                    &row.try_get::<String, _>("stream_id").map_err(db)?,
                    &row.try_get::<Value, _>("payload").map_err(db)?,
                )
            }
            None => json!({"type": scheduled.event_type, "timestamp": scheduled.at, "data": {}}),
        };
        let (attempt, outcome) = self.attempt(&subscription, &scheduled, state.attempts + 1, &body, true).await?;
        let gone = outcome.status == Some(410);
        let events = WebhookDelivery::decide(&state, DeliveryCommand::Record { attempt, gone })?;
        let abandoned = events.iter().any(|e| matches!(e, domain::webhook::DeliveryEvent::Abandoned(_)));
        self.append_delivery(id, ExpectedVersion::Exact(loaded.version), &events, scheduled.company_id).await?;
        if abandoned {
            let (reason, detail) = if gone {
                ("gone", "the endpoint answered 410 Gone".to_owned())
            } else {
                ("sustained_failure", format!("delivery {id} failed on every attempt of the retry schedule"))
            };
            let disabled = WebhookDisabled { reason: reason.into(), detail: Some(detail), at: self.clock.now() };
            let actor = WebhookActor::system(scheduled.company_id);
            self.command(&actor, scheduled.subscription_id, SubscriptionCommand::Disable(disabled)).await?;
        }
        Ok(true)
    }

    /// Runs the scheduler and the dispatcher until shutdown.
    pub async fn run(self, shutdown: CancellationToken, tick: Duration) {
        let mut wakeups = self.store.subscribe();
        loop {
            wakeups.mark_unchanged();
            let mut busy = false;
            match self.schedule_new().await {
                Ok(n) => busy |= n > 0,
                Err(error) => tracing::warn!(%error, "webhook scheduling failed; retrying"),
            }
            match self.dispatch_due().await {
                Ok(n) => busy |= n > 0,
                Err(error) => tracing::warn!(%error, "webhook dispatch failed; retrying"),
            }
            if busy {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wakeups.changed() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference library's tests.
        let signature = sign(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signature.as_deref(), Some("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="));
        assert!(sign("not-a-secret", "m", 1, b"x").is_none());
        let secret = new_secret();
        assert!(secret.starts_with("whsec_") && STANDARD.decode(&secret[6..]).map(|k| k.len()) == Ok(32));
        assert_eq!(fingerprint(&secret).len(), 8);
    }
}
