//! The HTTP API end to end: the real router, a fresh database per test, the
//! projectors running, real HTTP requests.
#![allow(clippy::unwrap_used)]

mod support;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chargeledger_api::{auth::Role, openapi};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::*;
use uuid::Uuid;

#[sqlx::test(migrations = "../migrations")]
async fn bad_credentials_get_401_problem_json(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let company = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": "x", "company": company, "role": "admin", "iat": now - 10, "exp": exp});
    let expired = encode(&Header::default(), &claims(now - 3600), &EncodingKey::from_secret(b"test-secret")).unwrap();
    let wrong_key =
        encode(&Header::default(), &claims(now + 3600), &EncodingKey::from_secret(b"another-secret")).unwrap();
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(now + 3600).to_string())
    );
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("none", app.client.get(app.url("/v1/terminals"))),
        ("basic", app.client.get(app.url("/v1/terminals")).header("authorization", "Basic dXNlcjpwdw==")),
        ("garbage", app.client.get(app.url("/v1/terminals")).bearer_auth("not.a.jwt")),
        ("expired", app.client.get(app.url("/v1/terminals")).bearer_auth(&expired)),
        ("wrong signature", app.client.get(app.url("/v1/terminals")).bearer_auth(&wrong_key)),
        ("alg none", app.client.get(app.url("/v1/terminals")).bearer_auth(&alg_none)),
        ("unknown api key", app.client.get(app.url("/v1/terminals")).header("x-api-key", "clk_nope")),
        ("post without auth", app.client.post(app.url("/v1/terminals")).json(&terminal("EVSE-1", 1))),
    ];
    for (name, request) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.headers().get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"), "{name}");
        let (status, body) = json_of(response).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["type"], "urn:chargeledger:problem:unauthorized", "{name}");
    }
    // Nothing was written by any of them.
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.running.state.pool).await.unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn api_keys_and_rs256_tokens_authenticate(pool: PgPool) {
    let mut config = test_config(&pool);
    config.jwt_public_key_pem = Some(include_str!("fixtures/rs256-public.pem").into());
    let app = TestApp::start_with(config, pool.clone()).await;
    let company = Uuid::new_v4();
    let (_, key) = chargeledger_api::auth::create_api_key(&pool, company, Role::Operator, "ci").await.unwrap();
    let response = app
        .client
        .post(app.url("/v1/terminals"))
        .header("x-api-key", &key)
        .json(&terminal("EVSE-KEY", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await.0, 201);
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_one(&pool).await.unwrap();
    assert_ne!(stored, key.as_bytes(), "keys are stored hashed");

    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": "rsa-user", "company": company, "role": "viewer", "iat": now, "exp": now + 600});
    let rs = encode(
        &Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(include_bytes!("fixtures/rs256-private.pem")).unwrap(),
    )
    .unwrap();
    let (status, body) = json_of(app.get("/v1/terminals", &rs).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["id"], "EVSE-KEY", "the RS256 caller sees its company's terminal");
    // A viewer may read but not write.
    let (status, body) = json_of(app.post("/v1/terminals", &rs, &terminal("EVSE-RS", 1)).send().await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (403, Some("urn:chargeledger:problem:forbidden")));
}

#[sqlx::test(migrations = "../migrations")]
async fn another_companys_terminal_is_not_found(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let (a, b) = (app.token(Uuid::new_v4(), Role::Admin), app.token(Uuid::new_v4(), Role::Admin));
    assert_eq!(json_of(app.post("/v1/terminals", &a, &terminal("EVSE-A", 1)).send().await.unwrap()).await.0, 201);
    app.post("/v1/terminals/EVSE-A/health-events", &a, &json!({"kind": "heartbeat"})).send().await.unwrap();

    for (status, body) in [
        json_of(app.get("/v1/terminals/EVSE-A", &b).send().await.unwrap()).await,
        json_of(app.put("/v1/terminals/EVSE-A/status", &b, &json!({"status": "Unavailable"})).send().await.unwrap())
            .await,
        json_of(app.post("/v1/terminals/EVSE-A/health-events", &b, &json!({"kind": "fault"})).send().await.unwrap())
            .await,
    ] {
        assert_eq!(status, 404, "{body}");
        assert!(!body.to_string().contains("Terra"), "no data leaks: {body}");
    }
    let (_, list) = json_of(app.get("/v1/terminals", &b).send().await.unwrap()).await;
    assert_eq!(list["data"], json!([]));
    let (_, stats) = json_of(app.get("/v1/terminals/stats", &b).send().await.unwrap()).await;
    assert_eq!((stats["total"].as_i64(), stats["faultsLast24h"].as_i64()), (Some(0), Some(0)));
    // Ids are global: B cannot take A's id, and is not told whose it is.
    let (status, body) = json_of(app.post("/v1/terminals", &b, &terminal("EVSE-A", 2)).send().await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    // A's terminal is untouched.
    let (_, mine) = json_of(app.get("/v1/terminals/EVSE-A", &a).send().await.unwrap()).await;
    assert_eq!((mine["status"].as_str(), mine["version"].as_i64()), (Some("Unavailable"), Some(2)));
}

#[sqlx::test(migrations = "../migrations")]
async fn the_six_terminal_endpoints(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);

    // POST /v1/terminals
    let response = app.post("/v1/terminals", &token, &terminal("EVSE-001", 10)).send().await.unwrap();
    assert_eq!(response.headers().get("location").unwrap(), "/v1/terminals/EVSE-001");
    let (status, created) = json_of(response).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["stationId"], 10);
    assert_eq!(created["status"], "Unavailable");
    assert_eq!(created["hasPassword"], true);
    assert_eq!(created["connectors"][1], json!({"id": 2, "type": "CCS2", "maxPowerW": 50000, "status": null}));
    assert!(!created.to_string().contains("a-long-enough-secret-1") && !created.to_string().contains("argon2"));
    for (id, station) in [("EVSE-002", 10), ("EVSE-003", 11)] {
        assert_eq!(
            json_of(app.post("/v1/terminals", &token, &terminal(id, station)).send().await.unwrap()).await.0,
            201
        );
    }

    // GET /v1/terminals/{id}
    let (status, got) = json_of(app.get("/v1/terminals/EVSE-001", &token).send().await.unwrap()).await;
    assert_eq!((status, &got), (200, &created));
    assert_eq!(json_of(app.get("/v1/terminals/EVSE-404", &token).send().await.unwrap()).await.0, 404);

    // GET /v1/terminals with pagination and filters
    let (_, page1) = json_of(app.get("/v1/terminals?limit=2", &token).send().await.unwrap()).await;
    assert_eq!(
        page1["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect::<Vec<_>>(),
        ["EVSE-001", "EVSE-002"]
    );
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) =
        json_of(app.get(&format!("/v1/terminals?limit=2&cursor={cursor}"), &token).send().await.unwrap()).await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["nextCursor"], Value::Null);
    let (_, station) = json_of(app.get("/v1/terminals?stationId=11", &token).send().await.unwrap()).await;
    assert_eq!(station["data"][0]["id"], "EVSE-003");

    // POST /v1/terminals/{id}/health-events: heartbeat, critical fault, recovery
    let (status, beat) = json_of(
        app.post("/v1/terminals/EVSE-001/health-events", &token, &json!({"kind": "heartbeat"})).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, beat["severity"].as_str()), (201, Some("info")), "{beat}");
    let fault = json!({"kind": "fault", "severity": "critical", "code": "GroundFailure", "message": "RCD tripped",
                       "timestamp": chrono::Utc::now().to_rfc3339()});
    let (status, faulted) =
        json_of(app.post("/v1/terminals/EVSE-002/health-events", &token, &fault).send().await.unwrap()).await;
    assert_eq!((status, faulted["terminalStatus"].as_str()), (201, Some("Faulted")), "{faulted}");
    let (_, got) = json_of(app.get("/v1/terminals/EVSE-002", &token).send().await.unwrap()).await;
    assert_eq!(
        (got["status"].as_str(), got["statusReason"].as_str(), got["online"].as_bool()),
        (Some("Faulted"), Some("GroundFailure"), Some(true))
    );
    let (_, faulted_list) = json_of(app.get("/v1/terminals?status=Faulted", &token).send().await.unwrap()).await;
    assert_eq!(faulted_list["data"].as_array().unwrap().len(), 1);

    // GET /v1/terminals/stats
    let (_, stats) = json_of(app.get("/v1/terminals/stats", &token).send().await.unwrap()).await;
    assert_eq!(stats["total"], 3);
    assert_eq!(stats["byStatus"]["Faulted"], 1);
    assert_eq!(stats["byStatus"]["Unavailable"], 2);
    assert_eq!(stats["byStatus"]["Charging"], 0);
    assert_eq!((stats["online"].as_i64(), stats["offline"].as_i64()), (Some(2), Some(1)));
    assert!((stats["onlineRatio"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(stats["faultsLast24h"], 1);

    let (_, recovered) = json_of(
        app.post("/v1/terminals/EVSE-002/health-events", &token, &json!({"kind": "recovery"})).send().await.unwrap(),
    )
    .await;
    assert_eq!(recovered["terminalStatus"], "Available");

    // PUT /v1/terminals/{id}/status
    let (status, updated) = json_of(
        app.put("/v1/terminals/EVSE-003/status", &token, &json!({"status": "Available", "reason": "commissioned"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, updated["status"].as_str(), updated["statusReason"].as_str()),
        (200, Some("Available"), Some("commissioned"))
    );
    let (status, body) =
        json_of(app.put("/v1/terminals/EVSE-003/status", &token, &json!({"status": "Charging"})).send().await.unwrap())
            .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "status");

    // Everything went through the log.
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = 'terminal-EVSE-002' ORDER BY stream_version",
    )
    .fetch_all(&app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(
        types,
        [
            "terminal.registered",
            "terminal.health_reported",
            "terminal.status_changed",
            "terminal.health_reported",
            "terminal.status_changed"
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn invalid_input_gets_problem_json_and_changes_nothing(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    let send_raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/v1/terminals"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = json_of(send_raw("{not json", "application/json").await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (400, Some("urn:chargeledger:problem:malformed-request")));
    assert_eq!(json_of(send_raw("{}", "text/plain").await.unwrap()).await.0, 400);

    let mut missing = terminal("EVSE-9", 1);
    missing.as_object_mut().unwrap().remove("vendor");
    let (status, body) = json_of(app.post("/v1/terminals", &token, &missing).send().await.unwrap()).await;
    assert_eq!(status, 422);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("vendor"), "{body}");

    let mut wrong_type = terminal("EVSE-9", 1);
    wrong_type["connectors"][1]["maxPowerW"] = json!("fast");
    let (status, body) = json_of(app.post("/v1/terminals", &token, &wrong_type).send().await.unwrap()).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("connectors[1].maxPowerW")), "{body}");

    let mut bad_values = terminal("EVSE-9", 0);
    bad_values["model"] = json!("");
    bad_values["connectors"] = json!([{"id": 1, "type": "CCS2", "maxPowerW": 0}]);
    let (status, body) = json_of(app.post("/v1/terminals", &token, &bad_values).send().await.unwrap()).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["stationId", "model", "connectors[0].maxPowerW"]);

    let mut short_password = terminal("EVSE-9", 1);
    short_password["chargerPassword"] = json!("short");
    assert_eq!(json_of(app.post("/v1/terminals", &token, &short_password).send().await.unwrap()).await.0, 422);
    let mut unknown = terminal("EVSE-9", 1);
    unknown["colour"] = json!("red");
    assert_eq!(json_of(app.post("/v1/terminals", &token, &unknown).send().await.unwrap()).await.0, 422);

    for query in ["limit=0", "limit=abc", "status=Sleeping", "cursor=%%%"] {
        let (status, body) = json_of(app.get(&format!("/v1/terminals?{query}"), &token).send().await.unwrap()).await;
        assert_eq!(status, 422, "{query}: {body}");
    }
    let (status, _) = json_of(
        app.post("/v1/terminals/EVSE-9/health-events", &token, &json!({"kind": "explosion"})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(json_of(app.get("/v1/nowhere", &token).send().await.unwrap()).await.0, 404);

    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.running.state.pool).await.unwrap();
    assert_eq!(count, 0, "rejected requests append nothing");
}

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
async fn the_five_health_endpoints(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    json_of(app.post("/v1/terminals", &token, &terminal("EVSE-H", 1)).send().await.unwrap()).await;
    for path in ["/health", "/health/live", "/health/ready"] {
        let (status, body) = json_of(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{path}");
    }
    let (status, detailed) = json_of(app.client.get(app.url("/health/detailed")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(detailed["postgres"]["status"], "up");
    assert_eq!(detailed["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(detailed["projectors"][0]["name"], "terminals");
    assert_eq!(detailed["projectors"][0]["lagEvents"], 0);
    assert!(detailed["projectors"][0]["checkpoint"].as_i64().unwrap() > 0);

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for needle in [
        r#"chargeledger_http_requests_total{method="POST",route="/v1/terminals",status="201"} 1"#,
        r#"chargeledger_http_request_duration_seconds_bucket{method="GET",route="/health/detailed",status="200""#,
        r#"chargeledger_events_appended_total{category="terminal"} 1"#,
        r#"chargeledger_projector_lag_events{projector="terminals"} 0"#,
        "chargeledger_log_head_position ",
        r#"chargeledger_projector_checkpoint_position{projector="terminals"} "#,
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn readiness_fails_with_503_when_postgres_is_unreachable(pool: PgPool) {
    let unreachable = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/none")
        .unwrap();
    let app = chargeledger_api::app::start(test_config(&pool), unreachable, false).await.unwrap();
    let client = reqwest::Client::new();
    let (status, body) = json_of(client.get(app.url("/health/ready")).send().await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (503, Some("urn:chargeledger:problem:unavailable")));
    let detailed = client.get(app.url("/health/detailed")).send().await.unwrap();
    assert_eq!(detailed.status().as_u16(), 503);
    let body: Value = detailed.json().await.unwrap();
    assert_eq!(body["postgres"]["status"], "down");
    assert_eq!(client.get(app.url("/health/live")).send().await.unwrap().status().as_u16(), 200);
    app.stop().await;
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.json")).unwrap_or_default();
    let generated = openapi::json();
    assert!(
        committed == generated,
        "schemas/openapi.json is stale: run `cargo run -p chargeledger-api -- openapi > schemas/openapi.json`"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/v1/terminals", "post"),
        ("/v1/terminals", "get"),
        ("/v1/terminals/{id}", "get"),
        ("/v1/terminals/{id}/health-events", "post"),
        ("/v1/terminals/{id}/status", "put"),
        ("/v1/terminals/stats", "get"),
        ("/health", "get"),
        ("/health/ready", "get"),
        ("/health/live", "get"),
        ("/health/detailed", "get"),
        ("/metrics", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_served_openapi_document_is_the_committed_one(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let served = app.client.get(app.url("/openapi.json")).send().await.unwrap().text().await.unwrap();
    assert_eq!(served, openapi::json());
    let docs = app.client.get(app.url("/docs")).send().await.unwrap().text().await.unwrap();
    assert!(docs.contains("/openapi.json"));
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
