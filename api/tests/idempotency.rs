//! Idempotency keys (issue 10 rule 9, issue 21 item 4): scoped to (company,
//! caller), expiring, holding no secrets, and never a lasting 409 after a crash.
#![allow(clippy::unwrap_used)]

mod support;

use chargeledger_api::{auth, auth::Role};
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use support::*;
use uuid::Uuid;

fn token_of(app: &TestApp, sub: &str, company: Uuid) -> String {
    auth::mint_token(&app.config, sub, company, Role::Admin, chrono::Duration::hours(1)).unwrap()
}

fn intent(amount: i64) -> Value {
    json!({"amount": amount, "method": "CREDIT_CARD"})
}

async fn create(app: &TestApp, token: &str, key: &str, amount: i64) -> (u16, Value, bool) {
    let response =
        app.post("/v1/payment-intents", token, &intent(amount)).header("idempotency-key", key).send().await.unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let (status, body) = json_of(response).await;
    (status, body, replayed)
}

async fn rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotent_responses").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn two_callers_of_one_company_using_one_key_get_their_own_outcomes(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let company = Uuid::new_v4();
    let (alice, bob) = (token_of(&app, "alice", company), token_of(&app, "bob", company));

    let (status, first, _) = create(&app, &alice, "k-1", 1000).await;
    assert_eq!(status, 201, "{first}");
    let (status, second, replayed) = create(&app, &bob, "k-1", 2000).await;
    assert_eq!((status, replayed), (201, false), "bob's request is executed, not replayed or refused: {second}");
    assert_ne!(first["id"], second["id"]);
    assert_eq!((first["amount"].as_i64(), second["amount"].as_i64()), (Some(1000), Some(2000)));
    // Each replay is the caller's own.
    let (_, again, replayed) = create(&app, &alice, "k-1", 1000).await;
    assert_eq!((again["id"].clone(), replayed), (first["id"].clone(), true));
    let (_, again, replayed) = create(&app, &bob, "k-1", 2000).await;
    assert_eq!((again["id"].clone(), replayed), (second["id"].clone(), true));
    // Bob sending Alice's body under the key is his own first request with another body: 422.
    assert_eq!(create(&app, &bob, "k-1", 1000).await.0, 422);

    // The command log too (terminal registration records the key there).
    for (token, id) in [(&alice, "EVSE-ALICE"), (&bob, "EVSE-BOB")] {
        let response =
            app.post("/v1/terminals", token, &terminal(id, 5)).header("idempotency-key", "reg-1").send().await.unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!((status, body["id"].as_str()), (201, Some(id)), "{body}");
    }
    // A driver whose customer id is an operator's subject: never the admin's
    // stored response (it would hold another customer's intent).
    let driver = auth::mint_token(&app.config, "alice", company, Role::Driver, chrono::Duration::hours(1)).unwrap();
    let (status, mine, replayed) = create(&app, &driver, "k-1", 1000).await;
    assert_eq!((status, replayed), (201, false), "the driver's request is executed, not replayed: {mine}");
    assert_ne!(mine["id"], first["id"]);

    // Another company's caller with the same subject and key: its own execution as well.
    let other = token_of(&app, "alice", Uuid::new_v4());
    let (status, third, replayed) = create(&app, &other, "k-1", 1000).await;
    assert_eq!((status, replayed), (201, false));
    assert_ne!(third["id"], first["id"]);
    app.running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn expired_keys_are_pruned_and_execute_afresh(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let token = token_of(&app, "alice", Uuid::new_v4());
    let (_, first, _) = create(&app, &token, "k-exp", 1000).await;
    let (_, fresh, _) = create(&app, &token, "k-fresh", 1000).await;
    assert!(create(&app, &token, "k-exp", 1000).await.2, "replayed within the TTL");

    // Older than the TTL (24 h by default): pruned, and the key executes afresh.
    sqlx::query("UPDATE idempotent_responses SET created_at = now() - interval '25 hours' WHERE key = 'k-exp'")
        .execute(&pool)
        .await
        .unwrap();
    let ttl = app.config.limits.idempotency_ttl;
    assert_eq!(chargeledger_api::idempotency::prune(&pool, ttl).await.unwrap(), 1);
    assert_eq!(rows(&pool).await, 1, "the fresh response is kept");
    let (status, again, replayed) = create(&app, &token, "k-exp", 1000).await;
    assert_eq!((status, replayed), (201, false));
    assert_ne!(again["id"], first["id"]);
    assert_eq!(create(&app, &token, "k-fresh", 1000).await.1["id"], fresh["id"]);

    // Expired but not yet pruned: free as well.
    sqlx::query("UPDATE idempotent_responses SET created_at = now() - interval '25 hours' WHERE key = 'k-fresh'")
        .execute(&pool)
        .await
        .unwrap();
    let (status, renewed, replayed) = create(&app, &token, "k-fresh", 1000).await;
    assert_eq!((status, replayed), (201, false));
    assert_ne!(renewed["id"], fresh["id"]);
    app.running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_workers_prune_expired_keys_on_their_own(pool: PgPool) {
    let mut config = test_config(&pool);
    config.limits.idempotency_ttl = std::time::Duration::from_secs(1);
    let app = TestApp::start_with(config, pool.clone()).await;
    let token = token_of(&app, "alice", Uuid::new_v4());
    assert_eq!(create(&app, &token, "k-short", 1000).await.0, 201);
    // The pruner runs every second with this TTL: bounded wait for the row to go.
    let mut gone = false;
    for _ in 0..100 {
        if rows(&pool).await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the periodic pruner deleted the expired response");
    app.running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_webhook_registration_replay_holds_no_secret(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let token = token_of(&app, "alice", Uuid::new_v4());
    let body = json!({"url": "https://example.com/hooks", "eventTypes": ["charge_session.*"]});
    let send = || app.post("/api/v1/webhooks", &token, &body).header("idempotency-key", "wh-1").send();
    let (status, created) = json_of(send().await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let stored: Vec<String> =
        sqlx::query_scalar("SELECT body FROM idempotent_responses").fetch_all(&pool).await.unwrap();
    assert_eq!(stored.len(), 1);
    let secret_part = secret.trim_start_matches("whsec_");
    assert!(!stored[0].contains(secret_part), "the stored response holds the secret: {}", stored[0]);

    let response = send().await.unwrap();
    assert_eq!(response.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let (status, replay) = json_of(response).await;
    assert_eq!(status, 201);
    assert_eq!(replay["id"], created["id"]);
    assert_eq!((replay["secret"].clone(), replay["secretWithheld"].clone()), (Value::Null, json!(true)));
    app.running.stop().await;
}

/// Leaves a claim as a process does while its request runs.
/// (`hash`: the fingerprint of the request, as a retry of the same one would have it.)
async fn claim(pool: &PgPool, company: Uuid, caller: &str, key: &str, instance: i32, hash: &[u8]) {
    sqlx::query(
        "INSERT INTO idempotent_responses (company_id, caller, key, request_hash, status, body, instance) \
         VALUES ($1, $2, $3, $5, 0, 'owner-token', $4)",
    )
    .bind(company)
    .bind(caller)
    .bind(key)
    .bind(instance)
    .bind(hash)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_retry_after_a_crash_is_executed_not_409(pool: PgPool) {
    let company = Uuid::new_v4();
    // A process that died mid-request left claims behind (no one holds its liveness lock).
    claim(&pool, company, "admin:user:alice", "k-dead-at-start", 7_000_001, b"other").await;
    let app = TestApp::start(pool.clone()).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotent_responses WHERE key = 'k-dead-at-start'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "claims of dead processes are released at start");
    let token = token_of(&app, "alice", company);
    let (status, _, _) = create(&app, &token, "k-dead-at-start", 1000).await;
    assert_eq!(status, 201);
    let hash: Vec<u8> =
        sqlx::query_scalar("SELECT request_hash FROM idempotent_responses WHERE key = 'k-dead-at-start'")
            .fetch_one(&pool)
            .await
            .unwrap();

    // A claim of a process that dies while this one runs: free at once, too.
    claim(&pool, company, "admin:user:alice", "k-dead-later", 7_000_002, &hash).await;
    let (status, body, replayed) = create(&app, &token, "k-dead-later", 1000).await;
    assert_eq!((status, replayed), (201, false), "{body}");
    assert!(create(&app, &token, "k-dead-later", 1000).await.2, "and its outcome is stored");

    // A claim of a process that is alive (holds its lock) is honoured: 409 …
    let url = app.config.database_url.clone();
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(chargeledger_api::idempotency::LOCK_SPACE)
        .bind(7_000_003)
        .execute(&mut other)
        .await
        .unwrap();
    claim(&pool, company, "admin:user:alice", "k-alive", 7_000_003, &hash).await;
    let (status, body, _) = create(&app, &token, "k-alive", 1000).await;
    assert_eq!((status, body["type"].as_str()), (409, Some("urn:chargeledger:problem:conflict")), "{body}");
    // … until that process is gone (kill -9 ends its connection): then the retry executes.
    other.close().await.unwrap();
    // The backend exits just after the client closes: wait (bounded) for its lock to go.
    for _ in 0..200 {
        let held: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid::text = '7000003'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if held == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, _, replayed) = create(&app, &token, "k-alive", 1000).await;
    assert_eq!((status, replayed), (201, false));
    app.running.stop().await;
}
