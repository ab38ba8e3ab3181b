//! Webhooks end to end: a local receiver verifies every delivery with the PyPI
//! `standardwebhooks` package; retries run on a clock the test moves forward.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chargeledger_api::auth::Role;
use chrono::{DateTime, Utc};
use commands::clock::Clock;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{receiver::Receiver, *};
use uuid::Uuid;

struct World {
    app: TestApp,
    token: String,
    clock: Clock,
}

async fn world(pool: PgPool) -> World {
    let config = test_config(&pool);
    let clock = config.clock.clone();
    let app = TestApp::start_with(config, pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    World { app, token, clock }
}

impl World {
    async fn subscribe(&self, url: &str, types: &[&str]) -> Value {
        let (status, body) = json_of(
            self.app
                .post("/api/v1/webhooks", &self.token, &json!({"url": url, "eventTypes": types, "description": "ops"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn attempts(&self, id: &str) -> Vec<Value> {
        let (status, page) =
            json_of(self.app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &self.token).send().await.unwrap())
                .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    async fn until_attempts(&self, id: &str, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let a = self.attempts(id).await;
            if a.len() >= n {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("never {n} attempts: {:?}", self.attempts(id).await);
    }

    async fn webhook(&self, id: &str) -> Value {
        json_of(self.app.get(&format!("/api/v1/webhooks/{id}"), &self.token).send().await.unwrap()).await.1
    }

    async fn terminal(&self, id: &str) {
        let (status, body) =
            json_of(self.app.post("/v1/terminals", &self.token, &terminal(id, 3)).send().await.unwrap()).await;
        assert_eq!(status, 201, "{body}");
    }

    async fn heartbeat(&self, id: &str) {
        let url = format!("/v1/terminals/{id}/health-events");
        let (status, body) =
            json_of(self.app.post(&url, &self.token, &json!({"kind": "heartbeat"})).send().await.unwrap()).await;
        assert!(status == 200 || status == 201, "{body}");
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn subscriptions_sign_deliveries_that_an_independent_library_verifies(pool: PgPool) {
    let w = world(pool).await;
    let receiver = Receiver::start().await;
    let created = w.subscribe(&receiver.url, &["terminal.*"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!((created["status"].as_str(), created["eventTypes"].clone()), (Some("active"), json!(["terminal.*"])));
    receiver.secrets(&[&secret]);

    // The secret is shown once.
    let got = w.webhook(&id).await;
    assert!(got.get("secret").is_none(), "{got}");
    let (_, listed) = json_of(w.app.get("/api/v1/webhooks", &w.token).send().await.unwrap()).await;
    assert_eq!(listed["data"][0]["id"], json!(id));
    assert!(listed["data"][0].get("secret").is_none());

    // An event of the company reaches the receiver, signed.
    w.terminal("EVSE-W1").await;
    let got = receiver.until("terminal.registered", |r| !r.is_empty()).await;
    let first = &got[0];
    assert_eq!(first["verified"], json!([0]), "standardwebhooks rejected it: {first}");
    assert_eq!(first["body"]["type"], "terminal.registered");
    assert_eq!(first["body"]["subject"], "terminal-EVSE-W1");
    assert_eq!(first["body"]["data"]["terminalId"], "EVSE-W1");
    assert_eq!(first["body"]["data"]["passwordHash"], Value::Null, "the charger password hash never leaves");
    assert!(first["id"].as_str().unwrap().starts_with("msg_"));
    let attempts = w.until_attempts(&id, 1).await;
    assert_eq!(
        (attempts[0]["attempt"].as_i64(), attempts[0]["statusCode"].as_i64(), attempts[0]["outcome"].as_str()),
        (Some(1), Some(200), Some("succeeded"))
    );
    assert_eq!(attempts[0]["responseExcerpt"], "thanks");
    assert_eq!(attempts[0]["messageId"], first["id"]);

    // The test route sends a signed webhook.test now.
    let (status, tested) =
        json_of(w.app.post(&format!("/api/v1/webhooks/{id}/test"), &w.token, &json!({})).send().await.unwrap()).await;
    assert_eq!(
        (status, tested["succeeded"].as_bool(), tested["statusCode"].as_i64()),
        (200, Some(true), Some(200)),
        "{tested}"
    );
    let got = receiver.until("webhook.test", |r| r.iter().any(|m| m["body"]["type"] == "webhook.test")).await;
    let test = got.iter().find(|m| m["body"]["type"] == "webhook.test").unwrap();
    assert_eq!(test["verified"], json!([0]));

    // Rotation: both secrets sign during the grace period; each verifies alone.
    let (status, rotated) = json_of(
        w.app
            .post(&format!("/api/v1/webhooks/{id}/rotate-secret"), &w.token, &json!({"graceSeconds": 3600}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    receiver.secrets(&[&new_secret, &secret]);
    w.heartbeat("EVSE-W1").await;
    let got =
        receiver.until("a heartbeat", |r| r.iter().any(|m| m["body"]["type"] == "terminal.health_reported")).await;
    let beat = got.iter().find(|m| m["body"]["type"] == "terminal.health_reported").unwrap();
    assert_eq!((beat["signatures"].as_i64(), beat["verified"].clone()), (Some(2), json!([0, 1])), "{beat}");
    // After the grace period only the new secret signs.
    w.clock.advance(Duration::from_secs(3601));
    w.heartbeat("EVSE-W1").await;
    let got = receiver
        .until("a second heartbeat", |r| {
            r.iter().filter(|m| m["body"]["type"] == "terminal.health_reported").count() == 2
        })
        .await;
    let beat = got.iter().filter(|m| m["body"]["type"] == "terminal.health_reported").nth(1).unwrap();
    assert_eq!((beat["signatures"].as_i64(), beat["verified"].clone()), (Some(1), json!([0])), "{beat}");

    // Bad input changes nothing.
    for (body, field) in [
        (json!({"url": "ftp://example.com/x", "eventTypes": ["*"]}), "url"),
        (json!({"url": "https://example.com/x", "eventTypes": ["nope.*"]}), "eventTypes[0]"),
        (json!({"url": "https://example.com/x", "eventTypes": []}), "eventTypes"),
    ] {
        let (status, problem) = json_of(w.app.post("/api/v1/webhooks", &w.token, &body).send().await.unwrap()).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{problem}");
    }

    // Another company sees and changes nothing.
    let other = w.app.token(Uuid::new_v4(), Role::Admin);
    for path in [format!("/api/v1/webhooks/{id}"), format!("/api/v1/webhooks/{id}/deliveries")] {
        assert_eq!(w.app.get(&path, &other).send().await.unwrap().status(), 404, "{path}");
    }
    assert_eq!(
        w.app.put(&format!("/api/v1/webhooks/{id}"), &other, &json!({"active": false})).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        w.app.post(&format!("/api/v1/webhooks/{id}/test"), &other, &json!({})).send().await.unwrap().status(),
        404
    );
    let deleted =
        w.app.client.delete(w.app.url(&format!("/api/v1/webhooks/{id}"))).bearer_auth(&other).send().await.unwrap();
    assert_eq!(deleted.status(), 404);
    let (_, theirs) = json_of(w.app.get("/api/v1/webhooks", &other).send().await.unwrap()).await;
    assert_eq!(theirs["data"], json!([]));
    // Nor do another company's events reach this subscription.
    let before = receiver.received().len();
    let (status, _) =
        json_of(w.app.post("/v1/terminals", &other, &terminal("EVSE-OTHER", 9)).send().await.unwrap()).await;
    assert_eq!(status, 201);

    // Deactivated: no more deliveries; the history stays.
    let (status, gone) = json_of(
        w.app.client.delete(w.app.url(&format!("/api/v1/webhooks/{id}"))).bearer_auth(&w.token).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, gone["status"].as_str()), (200, Some("deactivated")), "{gone}");
    w.heartbeat("EVSE-W1").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().len(), before, "nothing after deactivation, nothing of the other company");
    assert!(w.attempts(&id).await.len() >= 4, "the delivery log stays");
}

#[sqlx::test(migrations = "../migrations")]
async fn retries_follow_the_schedule_honour_retry_after_and_sustained_failure_disables(pool: PgPool) {
    let w = world(pool).await;
    let receiver = Receiver::start().await;
    receiver.answer("429 retry-after=600");
    let created = w.subscribe(&receiver.url, &["terminal.registered"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    receiver.secrets(&[created["secret"].as_str().unwrap()]);
    w.terminal("EVSE-R1").await;

    // Attempt 1: 429 with Retry-After 600 s, longer than the schedule's 5 s.
    let a = w.until_attempts(&id, 1).await;
    let gap = time(&a[0]["nextAttemptAt"]) - time(&a[0]["at"]);
    assert_eq!((a[0]["statusCode"].as_i64(), a[0]["outcome"].as_str()), (Some(429), Some("failed")));
    assert!(gap >= chrono::Duration::seconds(600), "Retry-After not honoured: {gap}");
    receiver.answer("503");
    // Not before it is due.
    w.clock.advance(Duration::from_secs(300));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(w.attempts(&id).await.len(), 1, "retried before Retry-After");

    // Then the schedule: 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after attempts 2..7, each ±10 %.
    let schedule = [300, 1800, 7200, 18000, 36000, 36000];
    w.clock.advance(Duration::from_secs(301));
    let mut seen = w.until_attempts(&id, 2).await;
    for (i, delay) in schedule.iter().enumerate() {
        let latest = &seen[0];
        assert_eq!(latest["attempt"].as_i64(), Some(i as i64 + 2), "{seen:?}");
        let gap = (time(&latest["nextAttemptAt"]) - time(&latest["at"])).num_milliseconds() as f64 / 1000.0;
        let d = *delay as f64;
        assert!(
            (0.9 * d - 1.0..=1.1 * d + 1.0).contains(&gap),
            "attempt {} scheduled {gap} s later, not ~{d} s",
            i + 2
        );
        w.clock.advance(Duration::from_secs_f64(1.1 * d + 2.0));
        seen = w.until_attempts(&id, i + 3).await;
    }
    // The 8th attempt was the last: given up, and the subscription disabled.
    let last = &seen[0];
    assert_eq!(
        (last["attempt"].as_i64(), last["nextAttemptAt"].clone(), last["deliveryStatus"].as_str()),
        (Some(8), Value::Null, Some("failed"))
    );
    let mut hook = Value::Null;
    for _ in 0..200 {
        hook = w.webhook(&id).await;
        if hook["status"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        (hook["status"].as_str(), hook["disabledReason"].as_str()),
        (Some("disabled"), Some("sustained_failure"))
    );
    assert_eq!(receiver.received().len(), 8, "every attempt reached the receiver once");
    assert!(receiver.received().windows(2).all(|p| p[0]["id"] == p[1]["id"]), "webhook-id is stable across retries");
    assert!(receiver.received().iter().all(|m| m["verified"] == json!([0])), "every attempt is signed afresh");
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type = 'webhook_delivery.attempt_failed'"
        )
        .fetch_one(&w.app.running.state.pool)
        .await
        .unwrap(),
        8,
        "every attempt is an event"
    );

    // 410 Gone disables at once.
    receiver.answer("410");
    let second = w.subscribe(&receiver.url, &["terminal.*"]).await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    w.terminal("EVSE-R2").await;
    let a = w.until_attempts(&second_id, 1).await;
    assert_eq!((a[0]["statusCode"].as_i64(), a[0]["nextAttemptAt"].clone()), (Some(410), Value::Null));
    for _ in 0..200 {
        hook = w.webhook(&second_id).await;
        if hook["status"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!((hook["status"].as_str(), hook["disabledReason"].as_str()), (Some("disabled"), Some("gone")));

    // What happens while it is disabled is kept, and delivered once it is re-enabled.
    w.terminal("EVSE-R3").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!receiver.received().iter().any(|m| m["body"]["subject"] == "terminal-EVSE-R3"), "sent while disabled");
    receiver.answer("200");
    receiver.secrets(&[second["secret"].as_str().unwrap()]);
    let (status, enabled) = json_of(
        w.app.put(&format!("/api/v1/webhooks/{second_id}"), &w.token, &json!({"active": true})).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, enabled["status"].as_str()), (200, Some("active")), "{enabled}");
    let got = receiver
        .until("EVSE-R3 after re-enabling", |r| r.iter().any(|m| m["body"]["subject"] == "terminal-EVSE-R3"))
        .await;
    let r3 = got.iter().find(|m| m["body"]["subject"] == "terminal-EVSE-R3").unwrap();
    assert_eq!((r3["status"].as_i64(), r3["verified"].clone()), (Some(200), json!([0])));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_receiver_that_was_down_gets_every_event_once_back_in_order_per_entity(pool: PgPool) {
    let w = world(pool).await;
    let receiver = Receiver::start().await;
    receiver.answer("503");
    let created = w.subscribe(&receiver.url, &["terminal.*"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    receiver.secrets(&[created["secret"].as_str().unwrap()]);
    // Two entities, several events each, while the receiver is down.
    for t in ["EVSE-D1", "EVSE-D2"] {
        w.terminal(t).await;
    }
    for _ in 0..3 {
        for t in ["EVSE-D1", "EVSE-D2"] {
            w.heartbeat(t).await;
        }
    }
    // Only the head of each entity is tried while it is down.
    w.until_attempts(&id, 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let tried: Vec<Value> = receiver.received();
    assert_eq!(tried.len(), 2, "only the first event of each entity is attempted: {tried:?}");
    assert!(tried.iter().all(|m| m["body"]["type"] == "terminal.registered"));

    // Back: everything arrives, each event once with a 2xx, in order per entity.
    let pool = w.app.running.state.pool.clone();
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id IN ('terminal-EVSE-D1', 'terminal-EVSE-D2')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(total >= 8);
    receiver.answer("200");
    w.clock.advance(Duration::from_secs(6));
    let got = receiver.until("every event", |r| r.iter().filter(|m| m["status"] == 200).count() as i64 >= total).await;
    let ok: Vec<&Value> = got.iter().filter(|m| m["status"] == 200).collect();
    assert_eq!(ok.len() as i64, total);
    let ids: std::collections::BTreeSet<&str> = ok.iter().map(|m| m["body"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len() as i64, total, "each event once");
    assert!(ok.iter().all(|m| m["verified"] == json!([0])));
    for t in ["EVSE-D1", "EVSE-D2"] {
        let stream = format!("terminal-{t}");
        let mut versions = Vec::new();
        for m in ok.iter().filter(|m| m["body"]["subject"] == stream.as_str()) {
            let event_id: Uuid = m["body"]["id"].as_str().unwrap().parse().unwrap();
            let version: i64 = sqlx::query_scalar("SELECT stream_version FROM events WHERE event_id = $1")
                .bind(event_id)
                .fetch_one(&pool)
                .await
                .unwrap();
            versions.push(version);
        }
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert!(versions.len() >= 4, "{stream}: {versions:?}");
        assert_eq!(versions, expected, "{stream} out of order");
    }
}
