//! Writes: idempotency keys, concurrent duplicates, and 202 when the read model
//! lags.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn idempotency_keys_replay_the_response_and_refuse_another_body(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    let first = app
        .post("/v1/terminals", &token, &terminal("EVSE-IK", 1))
        .header("idempotency-key", "reg-1")
        .send()
        .await
        .unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(first.status().as_u16(), 201);
    let first = first.text().await.unwrap();
    // Same request, different key order and whitespace: the same request.
    let same_body = serde_json::to_string_pretty(&terminal("EVSE-IK", 1)).unwrap();
    let again = app
        .client
        .post(app.url("/v1/terminals"))
        .bearer_auth(&token)
        .header("idempotency-key", "reg-1")
        .header("content-type", "application/json")
        .body(same_body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers().get("location").unwrap(), "/v1/terminals/EVSE-IK");
    assert_eq!(again.text().await.unwrap(), first, "a replay sends the same bytes");

    let (status, body) = json_of(
        app.post("/v1/terminals", &token, &terminal("EVSE-IK", 2))
            .header("idempotency-key", "reg-1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["type"].as_str()), (422, Some("urn:chargeledger:problem:idempotency-key-reused")));

    // Health reports: the same key twice records one report.
    for _ in 0..3 {
        let r = app
            .post("/v1/terminals/EVSE-IK/health-events", &token, &json!({"kind": "fault", "code": "E1"}))
            .header("idempotency-key", "f-1");
        assert_eq!(json_of(r.send().await.unwrap()).await.0, 201);
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = 'terminal-EVSE-IK'")
        .fetch_one(&app.running.state.pool)
        .await
        .unwrap();
    assert_eq!(events, 3, "registered, one health report, one status change");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_write_answers_202_when_the_read_model_lags(pool: PgPool) {
    // No projectors running: the command is in the log, the read model is not.
    let mut config = test_config(&pool);
    config.consistency_wait = std::time::Duration::from_millis(50);
    let running = chargeledger_api::app::start(config.clone(), pool.clone(), false).await.unwrap();
    let token =
        chargeledger_api::auth::mint_token(&config, "t", Uuid::new_v4(), Role::Admin, chrono::Duration::hours(1))
            .unwrap();
    let client = reqwest::Client::new();
    let response = client
        .post(running.url("/v1/terminals"))
        .bearer_auth(&token)
        .json(&terminal("EVSE-LAG", 1))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["terminalId"].as_str(), body["status"].as_str(), body["version"].as_i64()),
        (Some("EVSE-LAG"), Some("Unavailable"), Some(1))
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    assert_eq!(events, 1);
    running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_http_duplicates_get_one_effect_and_the_same_bytes(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    let mut requests = Vec::new();
    for _ in 0..6 {
        requests.push(
            app.post("/v1/terminals", &token, &terminal("EVSE-RACE", 1)).header("idempotency-key", "race-1").send(),
        );
    }
    // Stripe's semantics: a duplicate while the first is in flight gets 409;
    // the others get the stored response, byte for byte.
    let mut bodies = Vec::new();
    for r in futures::future::join_all(requests).await {
        let r = r.unwrap();
        match r.status().as_u16() {
            201 => bodies.push(r.text().await.unwrap()),
            409 => assert_eq!(json_of(r).await.1["type"], "urn:chargeledger:problem:conflict"),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!bodies.is_empty());
    let replay = app
        .post("/v1/terminals", &token, &terminal("EVSE-RACE", 1))
        .header("idempotency-key", "race-1")
        .send()
        .await
        .unwrap();
    bodies.push(replay.text().await.unwrap());
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = 'terminal-EVSE-RACE'")
        .fetch_one(&app.running.state.pool)
        .await
        .unwrap();
    assert_eq!(events, 1);
}
