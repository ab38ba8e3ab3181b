//! The scheduler: reads the log from its checkpoint (never past the
//! `webhooks` read model, so a subscription is known before the events after
//! it) and schedules one delivery per matching subscriber of the event's
//! company, each a decision on its own stream `webhook_delivery-<uuid v5 of
//! subscription and event>`: a repeat after a crash schedules nothing twice.

use chrono::{DateTime, Utc};
use domain::{
    webhook::{filter_matches, DeliveryCommand, DeliveryScheduled, WebhookDelivery, WebhookSubscription},
    Aggregate, CompanyId,
};
use serde_json::json;
use uuid::Uuid;

use super::{delivery_context, message_id, queue::Subscriber, WebhookError, Webhooks};
use crate::{
    decision::{self, Stream},
    handler::{CommandContext, CommandError},
    store::RecordedEvent,
};

/// The scheduler's checkpoint row.
pub const CHECKPOINT: &str = "webhook_scheduler";

/// How many log events one pass reads.
const BATCH: i64 = 500;

/// Namespace of delivery ids (uuid v5 of subscription id ‖ event id).
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6f1b_35c2_8d4e_4f0a_9a57_0c1e_77d2_4b19);

/// The delivery of `event` to `subscription`: the same ids on every pass.
pub fn delivery_id(subscription: Uuid, event: Uuid) -> Uuid {
    let mut name = subscription.as_bytes().to_vec();
    name.extend_from_slice(event.as_bytes());
    Uuid::new_v5(&DELIVERY_NAMESPACE, &name)
}

/// The deliveries `events` call for, in log order: for each event of a
/// company, one per subscriber of that company registered before it whose
/// filters match it. Webhook events themselves are never delivered (a
/// delivery would cause deliveries without end). Pure.
pub fn plan(events: &[RecordedEvent], subscribers: &[Subscriber], now: DateTime<Utc>) -> Vec<DeliveryScheduled> {
    let mut planned = Vec::new();
    for event in events {
        let category = event.category();
        if category == WebhookDelivery::CATEGORY || category == WebhookSubscription::CATEGORY {
            continue;
        }
        let Some(company) = event.company_id().map(CompanyId) else { continue };
        let takes = |s: &&Subscriber| {
            s.company == company
                && s.registered_position < event.position
                && s.event_types.iter().any(|f| filter_matches(f, &event.event_type))
        };
        for subscriber in subscribers.iter().filter(takes) {
            let delivery_id = delivery_id(subscriber.id, event.event_id);
            planned.push(DeliveryScheduled {
                delivery_id,
                subscription_id: subscriber.id,
                company_id: company,
                message_id: message_id(delivery_id),
                event_id: Some(event.event_id),
                event_type: event.event_type.clone(),
                source_stream: event.stream_id.clone(),
                position: event.position,
                due_at: now,
                at: now,
            });
        }
    }
    planned
}

impl Webhooks {
    /// Schedules deliveries for the events after the scheduler's checkpoint
    /// (never past the `webhooks` read model). Returns how many events were read.
    pub async fn schedule_new(&self) -> Result<usize, WebhookError> {
        let after = self.store.checkpoint(CHECKPOINT).await?;
        let known = self.queue.seen_up_to().await?;
        let events: Vec<_> =
            self.store.read_all(after, BATCH).await?.into_iter().take_while(|e| e.position <= known).collect();
        let Some(last) = events.last().map(|e| e.position) else { return Ok(0) };
        let mut companies: Vec<CompanyId> = events.iter().filter_map(|e| e.company_id().map(CompanyId)).collect();
        companies.sort();
        companies.dedup();
        let subscribers = self.queue.subscriptions_for(&companies).await?;
        for scheduled in plan(&events, &subscribers, self.clock.now()) {
            // The command id is the delivery's, so a repeat after a crash is
            // answered from `command_log`; should that row be gone, the stream
            // exists and the aggregate schedules nothing.
            let ctx = delivery_context(&scheduled, Some(format!("webhook-schedule:{}", scheduled.delivery_id)));
            self.schedule(&ctx, "webhook_delivery.schedule", scheduled).await?;
        }
        self.store.advance_checkpoint(CHECKPOINT, last).await?;
        Ok(events.len())
    }

    /// Schedules one delivery, a decision on its own stream (nothing when it
    /// is scheduled already).
    pub(super) async fn schedule(
        &self,
        ctx: &CommandContext,
        command_type: &str,
        scheduled: DeliveryScheduled,
    ) -> Result<(), CommandError> {
        let id = scheduled.delivery_id;
        let stream = WebhookDelivery::stream_id(id);
        decision::run(
            &self.store,
            ctx,
            command_type,
            vec![Stream::of::<WebhookDelivery>(stream.as_str())],
            |d| d.decide::<WebhookDelivery>(&stream, DeliveryCommand::Schedule(scheduled.clone())).map(|_| ()),
            |()| json!({ "delivery": id }),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn event(position: i64, stream: &str, event_type: &str, company: Option<Uuid>) -> RecordedEvent {
        RecordedEvent {
            position,
            stream_id: stream.into(),
            stream_version: 1,
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            payload: json!({}),
            metadata: company.map_or(Value::Null, |c| json!({ "companyId": c })),
            recorded_at: now(),
            prev_hash: vec![],
            hash: vec![],
        }
    }

    fn subscriber(company: Uuid, filters: &[&str], registered_position: i64) -> Subscriber {
        Subscriber {
            id: Uuid::now_v7(),
            company: CompanyId(company),
            event_types: filters.iter().map(|f| (*f).to_owned()).collect(),
            registered_position,
        }
    }

    #[test]
    fn given_a_matching_subscriber_when_its_company_has_an_event_then_one_delivery_is_due_now() {
        let company = Uuid::now_v7();
        let sub = subscriber(company, &["terminal.*"], 1);
        let heartbeat = event(5, "terminal-EVSE-1", "terminal.heartbeat_received", Some(company));
        let planned = plan(std::slice::from_ref(&heartbeat), std::slice::from_ref(&sub), now());
        assert_eq!(planned.len(), 1);
        let d = &planned[0];
        assert_eq!(d.delivery_id, delivery_id(sub.id, heartbeat.event_id));
        assert_eq!(d.message_id, format!("msg_{}", d.delivery_id.simple()), "stable across attempts");
        assert_eq!(
            (d.subscription_id, d.company_id, d.event_id),
            (sub.id, CompanyId(company), Some(heartbeat.event_id))
        );
        assert_eq!((d.source_stream.as_str(), d.position, d.due_at), ("terminal-EVSE-1", 5, now()));
    }

    #[test]
    fn given_subscribers_when_events_do_not_concern_them_then_nothing_is_scheduled() {
        let (company, other) = (Uuid::now_v7(), Uuid::now_v7());
        let subs = [subscriber(company, &["payment_intent.captured"], 10)];
        let events = [
            // Before the registration.
            event(9, "payment_intent-1", "payment_intent.captured", Some(company)),
            // Another company's.
            event(11, "payment_intent-2", "payment_intent.captured", Some(other)),
            // Not in the filters.
            event(12, "payment_intent-3", "payment_intent.authorized", Some(company)),
            // No company.
            event(13, "payment_intent-4", "payment_intent.captured", None),
        ];
        assert!(plan(&events, &subs, now()).is_empty());
    }

    #[test]
    fn given_a_catch_all_subscriber_when_webhook_events_pass_then_they_are_never_delivered() {
        let company = Uuid::now_v7();
        let subs = [subscriber(company, &["*"], 0), subscriber(company, &["*"], 0)];
        let events = [
            event(1, "webhook-x", "webhook.registered", Some(company)),
            event(2, "webhook_delivery-y", "webhook_delivery.scheduled", Some(company)),
            event(3, "charge_session-z", "charge_session.started", Some(company)),
        ];
        let planned = plan(&events, &subs, now());
        assert_eq!(planned.iter().map(|d| d.position).collect::<Vec<_>>(), vec![3, 3]);
        assert_ne!(planned[0].delivery_id, planned[1].delivery_id, "one delivery per subscriber");
    }

    #[test]
    fn delivery_ids_are_the_same_on_every_pass() {
        let (s, e) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(delivery_id(s, e), delivery_id(s, e));
        assert_ne!(delivery_id(s, e), delivery_id(e, s));
    }
}
