//! The webhook SSRF guard through the API: refused addresses and ports are
//! 422 at registration and append nothing; the `/test` route (and the stored
//! attempts) answer a generic reason for unreachable and refused targets —
//! no connect error, no address, no body of an internal service.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn refused_addresses_and_ports_are_422_and_append_nothing(pool: PgPool) {
    let mut config = test_config(&pool);
    config.webhook_allow_private = false;
    let app = TestApp::start_with(config, pool.clone()).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    for url in [
        "http://192.0.0.170/hook",
        "http://192.88.99.1/hook",
        "http://[fec0::1]/hook",
        "http://[2002:7f00:1::1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://localhost./hook",
        "https://hooks.example.com:8443/hook",
        "http://hooks.example.com:22/hook",
        "https://8.8.8.8:6379/hook",
    ] {
        let body = json!({"url": url, "eventTypes": ["*"]});
        let (status, problem) = json_of(app.post("/api/v1/webhooks", &token, &body).send().await.unwrap()).await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM events WHERE event_type LIKE 'webhook%'").await, 0);
    // Allowed: public names and addresses on 80 and 443.
    for url in ["https://hooks.example.com/hook", "http://hooks.example.com:80/hook", "https://8.8.8.8:443/hook"] {
        let body = json!({"url": url, "eventTypes": ["terminal.health_reported"]});
        let (status, answer) = json_of(app.post("/api/v1/webhooks", &token, &body).send().await.unwrap()).await;
        assert_eq!(status, 201, "{url}: {answer}");
    }
    let registered = count(&pool, "SELECT count(*) FROM events WHERE event_type = 'webhook.registered'").await;
    assert_eq!(registered, 3);
}

/// A loopback "internal service" that answers every request with a secret body.
async fn internal_service() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/internal", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = "INTERNAL-SECRET-BODY";
            let answer = format!("HTTP/1.1 500 Oops\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, hits)
}

fn assert_generic(answer: &Value, expected: &str) {
    assert_eq!(answer["succeeded"], false, "{answer}");
    assert_eq!(answer["error"], expected, "{answer}");
    let text = answer.to_string();
    for detail in ["os error", "tcp", "Connection refused", "127.0.0.1", "resolves", "INTERNAL-SECRET-BODY"] {
        assert!(!text.contains(detail), "{detail} in {text}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_test_route_answers_a_generic_reason_for_unreachable_and_refused_targets(pool: PgPool) {
    // Loopback allowed (as in private deployments): an unreachable port.
    let app = TestApp::start(pool.clone()).await;
    let company = Uuid::new_v4();
    let token = app.token(company, Role::Operator);
    let closed = format!("http://127.0.0.1:{}/hook", free_port());
    let body = json!({"url": closed, "eventTypes": ["terminal.health_reported"]});
    let (status, unreachable) = json_of(app.post("/api/v1/webhooks", &token, &body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{unreachable}");
    let unreachable = unreachable["id"].as_str().unwrap().to_owned();
    let (status, answer) =
        json_of(app.post(&format!("/api/v1/webhooks/{unreachable}/test"), &token, &json!({})).send().await.unwrap())
            .await;
    assert_eq!(status, 200, "{answer}");
    assert_generic(&answer, gateways::webhooks::UNREACHABLE);
    // A subscription to an internal service, registered while that was allowed.
    let (internal_url, hits) = internal_service().await;
    let body = json!({"url": internal_url, "eventTypes": ["terminal.health_reported"]});
    let (status, internal) = json_of(app.post("/api/v1/webhooks", &token, &body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{internal}");
    let internal = internal["id"].as_str().unwrap().to_owned();
    app.running.stop().await;

    // The same log under the default policy: the target is refused at send time.
    let mut config = test_config(&pool);
    config.webhook_allow_private = false;
    let app = TestApp::start_with(config, pool.clone()).await;
    let token = app.token(company, Role::Operator);
    let (status, answer) =
        json_of(app.post(&format!("/api/v1/webhooks/{internal}/test"), &token, &json!({})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    assert_generic(&answer, gateways::webhooks::REFUSED);
    assert_eq!((answer["statusCode"].clone(), answer["responseExcerpt"].clone()), (Value::Null, Value::Null));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent to the internal service");
    // The stored attempts say no more than the answers did.
    for id in [&unreachable, &internal] {
        let mut attempts = Vec::new();
        for _ in 0..400 {
            let (status, page) =
                json_of(app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &token).send().await.unwrap()).await;
            assert_eq!(status, 200, "{page}");
            attempts = page["data"].as_array().unwrap().clone();
            if !attempts.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(!attempts.is_empty(), "no attempt of {id} recorded");
        for attempt in &attempts {
            let error = attempt["error"].as_str().unwrap_or_default();
            assert!(gateways::webhooks::ERRORS.contains(&error), "{attempt}");
            assert_eq!(attempt["responseExcerpt"], Value::Null, "{attempt}");
        }
    }
}
