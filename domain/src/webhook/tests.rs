//! Given / when / then tests of webhook subscriptions and deliveries.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::{Aggregate, CompanyId, DomainEvent};

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
fn a_disabled_subscription_is_re_enabled_by_an_update_and_a_deactivated_one_is_final() {
    let s = registered();
    let disabled = WebhookDisabled { reason: "gone".into(), detail: None, at: at() };
    let events = WebhookSubscription::decide(&s, SubscriptionCommand::Disable(disabled.clone())).unwrap_or_default();
    let s = events.iter().fold(s, WebhookSubscription::evolve);
    assert_eq!(s.status, SubscriptionStatus::Disabled);
    assert!(WebhookSubscription::decide(&s, SubscriptionCommand::Disable(disabled)).unwrap_or_default().is_empty());
    let update =
        SubscriptionCommand::Update { url: None, event_types: None, description: None, active: Some(true), at: at() };
    let events = WebhookSubscription::decide(&s, update.clone()).unwrap_or_default();
    assert_eq!(events, vec![WebhookEvent::Enabled(WebhookAt { at: at() })]);
    let s = events.iter().fold(s, WebhookSubscription::evolve);
    let events = WebhookSubscription::decide(&s, SubscriptionCommand::Deactivate { at: at() }).unwrap_or_default();
    let s = events.iter().fold(s, WebhookSubscription::evolve);
    assert!(matches!(WebhookSubscription::decide(&s, update), Err(SubscriptionError::Deactivated)));
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
    let gone =
        WebhookDelivery::decide(&s, DeliveryCommand::Record { attempt: attempt(1, Some(410), Some(at())), gone: true })
            .unwrap_or_default();
    assert_eq!(
        gone.iter().map(DomainEvent::event_type).collect::<Vec<_>>(),
        ["webhook_delivery.attempt_failed", "webhook_delivery.abandoned"]
    );
    let last = WebhookDelivery::decide(&s, DeliveryCommand::Record { attempt: attempt(1, None, None), gone: false })
        .unwrap_or_default();
    assert_eq!(last.len(), 2);
}

#[test]
fn a_subscription_refuses_by_variant_what_its_state_does_not_allow() {
    let rotate = |previous: Uuid| {
        SubscriptionCommand::RotateSecret(WebhookSecretRotated {
            secret_id: Uuid::from_u128(2),
            secret_fingerprint: "11111111".into(),
            previous_secret_id: previous,
            previous_expires_at: at(),
            at: at(),
        })
    };
    // Given no subscription, when it is rotated, then it is not found.
    let missing = WebhookSubscription::decide(&SubscriptionState::default(), rotate(Uuid::nil())).unwrap_err();
    assert!(matches!(missing, SubscriptionError::NotFound), "{missing:?}");
    assert_eq!(missing.to_string(), "webhook not found");
    // Given a subscription, when a rotation names a secret that is not the current one.
    let stale = WebhookSubscription::decide(&registered(), rotate(Uuid::from_u128(9))).unwrap_err();
    assert!(matches!(stale, SubscriptionError::SecretChanged), "{stale:?}");
    // When an update makes the URL invalid, then the field is named.
    let bad = SubscriptionCommand::Update {
        url: Some("ftp://example.com".into()),
        event_types: None,
        description: None,
        active: None,
        at: at(),
    };
    let invalid = WebhookSubscription::decide(&registered(), bad).unwrap_err();
    assert!(matches!(&invalid, SubscriptionError::Invalid(f) if f[0].field == "url"), "{invalid:?}");
}
