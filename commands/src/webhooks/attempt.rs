//! One attempt: sign, send, and record what the endpoint answered as a
//! decision on the delivery's stream. Also the test event, sent at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{
    webhook::{
        DeliveryAttempted, DeliveryCommand, DeliveryEvent, DeliveryScheduled, DeliveryStatus, SubscriptionCommand,
        SubscriptionState, SubscriptionStatus, WebhookDelivery, WebhookDisabled, WebhookSubscription,
    },
    DomainError,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{message_id, signing, subscriptions::WebhookActor, SendOutcome, Webhooks};
use crate::{
    decision::{self, Stream},
    handler::{CommandContext, CommandError},
    store::StoreError,
};

/// How much of an answer's body an attempt keeps.
const EXCERPT_CHARS: usize = 512;

/// The result of one attempt, as the test route answers it.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// The delivery attempted.
    pub delivery_id: Uuid,
    /// Its `webhook-id`.
    pub message_id: String,
    /// Whether the endpoint answered 2xx.
    pub succeeded: bool,
    /// The attempt as recorded.
    pub attempt: DeliveryAttempted,
}

/// When attempt `number` (1 for the first), answered with `outcome` at
/// `now`, is tried again: the schedule's delay for it stretched by `jitter`
/// (0.9..1.1, so receivers that were down are not hit all at once), never
/// before the endpoint's `Retry-After`. `None`: it succeeded, or the schedule
/// is exhausted. Pure.
pub fn next_attempt_at(
    schedule: &[Duration],
    number: u32,
    outcome: &SendOutcome,
    now: DateTime<Utc>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    if outcome.succeeded() {
        return None;
    }
    let delay = schedule.get((number as usize).checked_sub(1)?)?;
    let delay = delay.mul_f64(jitter).max(outcome.retry_after.unwrap_or_default());
    Some(now + chrono::Duration::from_std(delay).unwrap_or_default())
}

/// The attempt as its event records it. Pure.
pub fn attempted(
    number: u32,
    outcome: &SendOutcome,
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DeliveryAttempted {
    DeliveryAttempted {
        attempt: number,
        status_code: outcome.status,
        duration_ms: outcome.duration_ms,
        response_excerpt: outcome.excerpt.as_ref().map(|t| t.chars().take(EXCERPT_CHARS).collect()),
        error: outcome.error.clone(),
        next_attempt_at: next,
        at: now,
    }
}

/// Why the subscription is disabled after `events` recorded an attempt of
/// `delivery`: the endpoint is gone, or the delivery exhausted its retries.
/// `None` while the delivery is still alive (or succeeded). Pure.
pub fn disabling(events: &[DeliveryEvent], gone: bool, delivery: Uuid, now: DateTime<Utc>) -> Option<WebhookDisabled> {
    if !events.iter().any(|e| matches!(e, DeliveryEvent::Abandoned(_))) {
        return None;
    }
    let (reason, detail) = if gone {
        ("gone", "the endpoint answered 410 Gone".to_owned())
    } else {
        ("sustained_failure", format!("delivery {delivery} failed on every attempt of the retry schedule"))
    };
    Some(WebhookDisabled { reason: reason.into(), detail: Some(detail), at: now })
}

fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::None => "none",
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Failed => "failed",
    }
}

impl Webhooks {
    /// Signs and sends attempt `number` of `delivery`. `retry` says whether a
    /// failure gets a next attempt.
    pub(super) async fn attempt(
        &self,
        subscription: &SubscriptionState,
        delivery: &DeliveryScheduled,
        number: u32,
        body: &Value,
        retry: bool,
    ) -> Result<(DeliveryAttempted, SendOutcome), StoreError> {
        let body = serde_json::to_vec(body).unwrap_or_default();
        // Receivers check the signature's timestamp against their own clock,
        // so it comes from the wall clock, never from the schedule's.
        let timestamp = self.wall_clock.now().timestamp();
        let secrets = self.signing_secrets(subscription).await?;
        let headers = signing::headers(&secrets, &delivery.message_id, timestamp, &body);
        let outcome = self.sender.send(&subscription.url, &headers, body, self.config.timeout).await;
        let now = self.clock.now();
        let jitter = rand::random::<f64>() * 0.2 + 0.9;
        let next = if retry { next_attempt_at(&self.config.schedule, number, &outcome, now, jitter) } else { None };
        Ok((attempted(number, &outcome, next, now), outcome))
    }

    /// Records `attempt` on the delivery stream `delivery` (loaded by the
    /// caller, whose state is used first). With `subscription`, an attempt
    /// that abandons the delivery disables that subscription in the same
    /// decision. The delivery's status afterwards is the stored answer.
    pub(super) async fn record(
        &self,
        ctx: &CommandContext,
        delivery: (Uuid, Stream),
        subscription: Option<(Uuid, Stream)>,
        attempt: DeliveryAttempted,
        gone: bool,
    ) -> Result<(), CommandError> {
        let (delivery_id, delivery_stream) = delivery;
        let stream = WebhookDelivery::stream_id(delivery_id);
        let disables = subscription.as_ref().map(|(id, _)| WebhookSubscription::stream_id(*id));
        let mut streams = vec![delivery_stream];
        streams.extend(subscription.map(|(_, s)| s));
        let (number, now) = (attempt.attempt, self.clock.now());
        decision::run(
            &self.store,
            ctx,
            "webhook_delivery.attempt",
            streams,
            |d| {
                let events =
                    d.decide::<WebhookDelivery>(&stream, DeliveryCommand::Record { attempt: attempt.clone(), gone })?;
                if let (Some(subscription), Some(disabled)) = (&disables, disabling(&events, gone, delivery_id, now)) {
                    d.decide::<WebhookSubscription>(subscription, SubscriptionCommand::Disable(disabled))?;
                }
                Ok(status_name(d.state::<WebhookDelivery>(&stream)?.status))
            },
            |status| json!({ "delivery": delivery_id, "attempt": number, "status": status }),
        )
        .await?;
        Ok(())
    }

    /// Sends a signed `webhook.test` event now: one attempt, no retries, and
    /// a failure disables nothing.
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
            message_id: message_id(delivery_id),
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
        let ctx = actor.context();
        // Recorded before the request, so even a test that never returns is in the log.
        self.schedule(&ctx, "webhook_delivery.test", scheduled.clone()).await?;
        let (attempt, outcome) = self.attempt(&state, &scheduled, 1, &body, false).await?;
        let delivery = (delivery_id, Stream::of::<WebhookDelivery>(WebhookDelivery::stream_id(delivery_id)));
        self.record(&ctx, delivery, None, attempt.clone(), false).await?;
        Ok(AttemptResult { delivery_id, message_id: scheduled.message_id, succeeded: outcome.succeeded(), attempt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn answered(status: u16) -> SendOutcome {
        SendOutcome { status: Some(status), duration_ms: 12, ..Default::default() }
    }

    fn schedule() -> Vec<Duration> {
        vec![Duration::from_secs(5), Duration::from_secs(300)]
    }

    #[test]
    fn given_a_failed_attempt_when_the_schedule_has_a_delay_for_it_then_it_is_retried_after_that_delay_jittered() {
        let at = |number, jitter| next_attempt_at(&schedule(), number, &answered(500), now(), jitter);
        assert_eq!(at(1, 1.0), Some(now() + chrono::Duration::seconds(5)));
        assert_eq!(at(2, 0.9), Some(now() + chrono::Duration::seconds(270)));
        assert_eq!(at(2, 1.1), Some(now() + chrono::Duration::seconds(330)));
    }

    #[test]
    fn given_a_retry_after_longer_than_the_schedule_when_the_attempt_failed_then_the_retry_waits_for_it() {
        let outcome = SendOutcome { retry_after: Some(Duration::from_secs(60)), ..answered(429) };
        assert_eq!(next_attempt_at(&schedule(), 1, &outcome, now(), 1.1), Some(now() + chrono::Duration::seconds(60)));
    }

    #[test]
    fn given_success_or_an_exhausted_schedule_then_there_is_no_next_attempt() {
        assert_eq!(next_attempt_at(&schedule(), 1, &answered(204), now(), 1.0), None);
        assert_eq!(next_attempt_at(&schedule(), 3, &answered(500), now(), 1.0), None);
        let unreachable = SendOutcome { error: Some("connect refused".into()), ..Default::default() };
        assert!(next_attempt_at(&schedule(), 2, &unreachable, now(), 1.0).is_some());
    }

    #[test]
    fn an_attempt_keeps_only_the_start_of_a_long_answer() {
        let outcome = SendOutcome { excerpt: Some("é".repeat(2000)), ..answered(500) };
        let attempt = attempted(3, &outcome, None, now());
        assert_eq!(attempt.response_excerpt.map(|e| e.chars().count()), Some(EXCERPT_CHARS));
        assert_eq!((attempt.attempt, attempt.status_code, attempt.duration_ms, attempt.at), (3, Some(500), 12, now()));
    }

    fn recorded(status: u16, next: Option<DateTime<Utc>>, gone: bool) -> Vec<DeliveryEvent> {
        let pending = domain::webhook::DeliveryState {
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(now()),
            ..Default::default()
        };
        let record = DeliveryCommand::Record { attempt: attempted(1, &answered(status), next, now()), gone };
        <WebhookDelivery as domain::Aggregate>::decide(&pending, record).unwrap_or_default()
    }

    #[test]
    fn given_an_exhausted_delivery_when_recorded_then_its_subscription_is_disabled_for_sustained_failure() {
        let delivery = Uuid::now_v7();
        let disabled = disabling(&recorded(500, None, false), false, delivery, now());
        assert_eq!(disabled.as_ref().map(|d| d.reason.as_str()), Some("sustained_failure"));
        assert!(disabled.and_then(|d| d.detail).is_some_and(|d| d.contains(&delivery.to_string())));
    }

    #[test]
    fn given_410_gone_when_recorded_then_its_subscription_is_disabled_as_gone() {
        let later = Some(now() + chrono::Duration::seconds(5));
        let disabled = disabling(&recorded(410, later, true), true, Uuid::now_v7(), now());
        assert_eq!(disabled.map(|d| d.reason), Some("gone".to_owned()));
    }

    #[test]
    fn given_a_retry_or_a_success_when_recorded_then_the_subscription_stays() {
        let later = Some(now() + chrono::Duration::seconds(5));
        assert_eq!(disabling(&recorded(500, later, false), false, Uuid::now_v7(), now()), None);
        assert_eq!(disabling(&recorded(200, None, false), false, Uuid::now_v7(), now()), None);
    }
}
