//! Every webhook write goes through the one command path: each event carries
//! the command id that `command_log` records, and the worker's commands have
//! ids a repeat would find (issue 12).
#![allow(clippy::unwrap_used)]

mod support;

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{receiver::Receiver, *};
use uuid::Uuid;

/// `(stream, event type, command id, causation id)` of the events of streams like `pattern`.
async fn writes(pool: &PgPool, pattern: &str) -> Vec<(String, String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT stream_id, event_type, metadata->>'commandId', metadata->>'causationId' FROM events \
         WHERE stream_id LIKE $1 ORDER BY position",
    )
    .bind(pattern)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn logged(pool: &PgPool, command_id: &str) -> Option<(String, Value)> {
    sqlx::query_as("SELECT command_type, outcome FROM command_log WHERE command_id = $1")
        .bind(command_id)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn webhook_writes_record_their_command_ids_and_410_disables_in_the_same_decision(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let receiver = Receiver::start().await;
    receiver.answer("410");
    let body = json!({"url": receiver.url, "eventTypes": ["terminal.registered"]});
    let (status, created) = json_of(app.post("/api/v1/webhooks", &token, &body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    receiver.secrets(&[created["secret"].as_str().unwrap()]);
    let (status, terminal) =
        json_of(app.post("/v1/terminals", &token, &support::terminal("EVSE-C1", 3)).send().await.unwrap()).await;
    assert_eq!(status, 201, "{terminal}");

    // The endpoint answers 410 Gone: the delivery is abandoned and the subscription disabled.
    let pool = app.running.state.pool.clone();
    let subscription = format!("webhook-{id}");
    for _ in 0..400 {
        if writes(&pool, &subscription).await.iter().any(|w| w.1 == "webhook.disabled") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let source: String = sqlx::query_scalar(
        "SELECT event_id::text FROM events WHERE stream_id = 'terminal-EVSE-C1' ORDER BY position LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let deliveries = writes(&pool, "webhook_delivery-%").await;
    let types: Vec<&str> = deliveries.iter().map(|w| w.1.as_str()).collect();
    assert_eq!(
        types,
        ["webhook_delivery.scheduled", "webhook_delivery.attempt_failed", "webhook_delivery.abandoned"],
        "{deliveries:?}"
    );
    let delivery = deliveries[0].0.strip_prefix("webhook_delivery-").unwrap();
    let schedule = format!("webhook-schedule:{delivery}");
    let attempt = format!("webhook-attempt:{delivery}:1");
    assert_eq!(deliveries[0].2.as_deref(), Some(schedule.as_str()));
    assert!(deliveries[1..].iter().all(|w| w.2.as_deref() == Some(attempt.as_str())), "{deliveries:?}");
    assert!(deliveries.iter().all(|w| w.3.as_deref() == Some(source.as_str())), "caused by the source event");

    let subscription = writes(&pool, &subscription).await;
    assert_eq!(
        subscription.iter().map(|w| w.1.as_str()).collect::<Vec<_>>(),
        ["webhook.registered", "webhook.disabled"]
    );
    assert_eq!(subscription[1].2.as_deref(), Some(attempt.as_str()), "disabled by the attempt's decision");
    assert_eq!(logged(&pool, &schedule).await.map(|l| l.0), Some("webhook_delivery.schedule".into()));
    let (kind, outcome) = logged(&pool, &attempt).await.unwrap();
    assert_eq!(
        (kind.as_str(), outcome["attempt"].as_i64(), outcome["status"].as_str()),
        ("webhook_delivery.attempt", Some(1), Some("failed"))
    );
    let registered = subscription[0].2.as_deref().unwrap();
    assert_eq!(logged(&pool, registered).await.map(|l| l.0), Some("webhook".into()));

    // The test route's writes too: scheduled, then the attempt, each its own command.
    receiver.answer("200");
    let url = format!("/api/v1/webhooks/{id}/test");
    let (status, tested) = json_of(app.post(&url, &token, &json!({})).send().await.unwrap()).await;
    assert_eq!((status, tested["succeeded"].as_bool()), (200, Some(true)), "{tested}");
    let test = writes(&pool, &format!("webhook_delivery-{}", tested["deliveryId"].as_str().unwrap())).await;
    assert_eq!(test.len(), 2, "{test:?}");
    for (_, _, command, _) in &test {
        assert!(logged(&pool, command.as_deref().unwrap()).await.is_some(), "{test:?}");
    }
    assert_ne!(test[0].2, test[1].2);
}
