//! The dispatcher: sends the deliveries the read model says are due, each
//! re-checked against its own stream under a lease, and records every
//! attempt (command id `webhook-attempt:<delivery>:<attempt>`, so a repeat
//! records nothing twice).

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::webhook::{
    DeliveryScheduled, DeliveryState, DeliveryStatus, SubscriptionStatus, WebhookDelivery, WebhookSubscription,
};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use super::{delivery_context, WebhookError, Webhooks};
use crate::{
    decision::Stream,
    handler::{load, CommandError},
    store::StoreError,
};

/// How long past the attempt's timeout a lease outlives a worker that died
/// holding it.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The delivery's scheduling and source event when it is due at `now` by its
/// own stream: pending, its next attempt reached, and carrying a log event
/// (tests are sent by their route, once; the dispatcher never retries them).
/// Pure: no I/O; the answer depends only on `state` and `now`.
pub fn due(state: &DeliveryState, now: DateTime<Utc>) -> Option<(&DeliveryScheduled, Uuid)> {
    let scheduled = state.scheduled.as_ref()?;
    let event_id = scheduled.event_id?;
    let reached = state.next_attempt_at.is_some_and(|t| t <= now);
    (state.status == DeliveryStatus::Pending && reached).then_some((scheduled, event_id))
}

impl Webhooks {
    /// Sends the due deliveries: the oldest pending one of each (subscription,
    /// stream), of active subscriptions. Returns how many attempts were made.
    pub async fn dispatch_due(&self) -> Result<usize, WebhookError> {
        let due = self.queue.due_deliveries(self.clock.now(), self.config.concurrency * 4).await?;
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
        // Leases run on the database's time: they are about real workers
        // dying, not about the schedule's clock.
        let holder = Uuid::now_v7();
        let lease = self.config.timeout + LEASE_MARGIN;
        let leased = sqlx::query(
            "INSERT INTO webhook_leases (delivery_id, holder, until) VALUES ($1, $2, now() + $3 * interval '1 millisecond') \
             ON CONFLICT (delivery_id) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
               WHERE webhook_leases.until < now() RETURNING 1",
        )
        .bind(id)
        .bind(holder)
        .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
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
        let delivery_stream = WebhookDelivery::stream_id(id);
        let delivery = load::<WebhookDelivery>(&self.store, &delivery_stream).await?;
        let Some((scheduled, event_id)) = due(&delivery.state, self.clock.now()) else { return Ok(false) };
        let scheduled = scheduled.clone();
        let subscription_stream = WebhookSubscription::stream_id(scheduled.subscription_id);
        let subscription = load::<WebhookSubscription>(&self.store, &subscription_stream).await?;
        if subscription.state.status != SubscriptionStatus::Active {
            return Ok(false);
        }
        let Some(body) = self.event_body(event_id).await? else { return Ok(false) };
        let number = delivery.state.attempts + 1;
        let (attempt, outcome) = self.attempt(&subscription.state, &scheduled, number, &body, true).await?;
        // What was loaded above decides the first try; a concurrent change
        // makes the path read both streams again.
        let delivery =
            Stream::known::<WebhookDelivery>(delivery_stream, delivery.state, delivery.version, delivery.last_hash);
        let subscription = Stream::known::<WebhookSubscription>(
            subscription_stream,
            subscription.state,
            subscription.version,
            subscription.last_hash,
        );
        let ctx = delivery_context(&scheduled, Some(format!("webhook-attempt:{id}:{number}")));
        let subscription = Some((scheduled.subscription_id, subscription));
        self.record(&ctx, (id, delivery), subscription, attempt, outcome.gone()).await?;
        Ok(true)
    }

    /// The body of the delivery of log event `event_id`, redacted (ADR 0018);
    /// `None` if the event is not in the log.
    async fn event_body(&self, event_id: Uuid) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("SELECT event_type, payload, recorded_at, stream_id FROM events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(self.store.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(crate::publication::webhook_body(
            &self.config.redactor,
            &row.try_get::<String, _>("event_type")?,
            event_id,
            row.try_get("recorded_at")?,
            &row.try_get::<String, _>("stream_id")?,
            &row.try_get::<Value, _>("payload")?,
        )))
    }
}

#[cfg(test)]
mod tests {
    use domain::{
        webhook::{DeliveryCommand, DeliveryEvent},
        Aggregate, CompanyId,
    };

    use super::{super::attempt::attempted, *};
    use crate::webhooks::SendOutcome;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn scheduled(event_id: Option<Uuid>) -> DeliveryScheduled {
        let delivery_id = Uuid::now_v7();
        DeliveryScheduled {
            delivery_id,
            subscription_id: Uuid::now_v7(),
            company_id: CompanyId(Uuid::now_v7()),
            message_id: format!("msg_{}", delivery_id.simple()),
            event_id,
            event_type: "charge_session.started".into(),
            source_stream: "charge_session-1".into(),
            position: 7,
            due_at: now(),
            at: now(),
        }
    }

    fn given(events: &[DeliveryEvent]) -> DeliveryState {
        WebhookDelivery::fold(events)
    }

    fn failed(next: Option<DateTime<Utc>>) -> DeliveryEvent {
        let outcome = SendOutcome { status: Some(503), ..Default::default() };
        DeliveryEvent::AttemptFailed(attempted(1, &outcome, next, now()))
    }

    #[test]
    fn given_a_scheduled_delivery_when_its_time_comes_then_it_is_due_with_its_event() {
        let event = Uuid::now_v7();
        let state = given(&[DeliveryEvent::Scheduled(scheduled(Some(event)))]);
        assert_eq!(due(&state, now()).map(|(_, e)| e), Some(event));
        assert!(due(&state, now() - chrono::Duration::seconds(1)).is_none(), "not before it is due");
    }

    #[test]
    fn given_a_failed_attempt_when_its_retry_is_not_reached_then_it_is_not_due() {
        let retry = now() + chrono::Duration::seconds(5);
        let state = given(&[DeliveryEvent::Scheduled(scheduled(Some(Uuid::now_v7()))), failed(Some(retry))]);
        assert!(due(&state, now()).is_none());
        assert!(due(&state, retry).is_some());
    }

    #[test]
    fn given_a_finished_delivery_or_a_test_event_then_it_is_never_due() {
        let late = now() + chrono::Duration::days(365);
        let s = scheduled(Some(Uuid::now_v7()));
        let outcome = SendOutcome { status: Some(200), ..Default::default() };
        let done = WebhookDelivery::decide(
            &given(&[DeliveryEvent::Scheduled(s.clone())]),
            DeliveryCommand::Record { attempt: attempted(1, &outcome, None, now()), gone: false },
        )
        .unwrap_or_default();
        let mut history = vec![DeliveryEvent::Scheduled(s)];
        history.extend(done);
        assert!(due(&given(&history), late).is_none(), "succeeded");
        assert!(due(&given(&[DeliveryEvent::Scheduled(scheduled(None))]), late).is_none(), "a test event");
        assert!(due(&DeliveryState::default(), late).is_none(), "nothing scheduled");
    }
}
