//! The terminal endpoints: company scope, the six endpoints, and invalid input.

use super::*;

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
    assert_eq!(
        (body["errors"][0]["field"].as_str(), body["errors"][0]["message"].as_str()),
        (Some("vendor"), Some("is required")),
        "{body}"
    );

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

/// The body is checked against the document before any handler runs
/// (ADR 0022): every rule of the schema is a 422 naming the field, a NUL
/// anywhere (even deep in a free-form OCPP payload) is a 422 naming its path,
/// a whole number written `2.0` is the integer, and nothing refused appends.
#[sqlx::test(migrations = "../migrations")]
async fn bodies_are_held_to_the_document(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    let fields = |body: &Value| -> Vec<String> {
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
    };
    let post = |path: &str, body: Value| app.post(path, &token, &body).send();

    // Schema rules the handlers never look at themselves.
    let mut bad = terminal("EVSE-DOC", 1);
    bad["vendor"] = json!(" \t ");
    bad["ocppVersion"] = json!("1.5");
    bad["connectors"][0]["type"] = json!("Schuko");
    let (status, body) = json_of(post("/v1/terminals", bad).await.unwrap()).await;
    assert_eq!(
        (status, fields(&body)),
        (422, vec!["vendor".into(), "ocppVersion".into(), "connectors[0].type".into()]),
        "{body}"
    );
    // A rule between fields, in its own words, once the fields are right.
    let mut zero = terminal("EVSE-DOC", 1);
    zero["securityProfile"] = json!(0);
    let (status, body) = json_of(post("/v1/terminals", zero).await.unwrap()).await;
    assert_eq!((status, fields(&body)), (422, vec!["chargerPassword".into()]), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("profile 0"), "{body}");

    // NUL: in a typed field, and deep inside a free-form payload.
    let mut nul = terminal("EVSE-DOC", 1);
    nul["model"] = json!("Terra\u{0}AC");
    let (status, body) = json_of(post("/v1/terminals", nul).await.unwrap()).await;
    assert_eq!((status, fields(&body)), (422, vec!["model".into()]), "{body}");
    let command = json!({"action": "DataTransfer", "payload": {"vendorId": "acme", "data": ["ok", {"k": "a\u{0}b"}]}});
    let (status, body) = json_of(post("/v1/terminals/EVSE-DOC/commands", command).await.unwrap()).await;
    assert_eq!((status, fields(&body)), (422, vec!["payload.data[1].k".into()]), "{body}");

    // `2.0` is the integer 2; `2.5` is not an integer.
    let mut whole = terminal("EVSE-DOC", 1);
    whole["stationId"] = json!(2.0);
    let (status, body) = json_of(post("/v1/terminals", whole).await.unwrap()).await;
    assert_eq!((status, body["stationId"].as_i64()), (201, Some(2)), "{body}");
    let mut fraction = terminal("EVSE-DOC-2", 1);
    fraction["stationId"] = json!(2.5);
    let (status, body) = json_of(post("/v1/terminals", fraction).await.unwrap()).await;
    assert_eq!((status, fields(&body)), (422, vec!["stationId".into()]), "{body}");
    let (status, _) = json_of(app.get("/v1/terminals?stationId=2.0&limit=1e1", &token).send().await.unwrap()).await;
    assert_eq!(status, 200, "whole numbers in the query too");

    // NUL in a query string: 422, not a database error.
    let (status, body) = json_of(app.get("/v1/payment-intents?customerId=a%00b", &token).send().await.unwrap()).await;
    assert_eq!((status, fields(&body)), (422, vec!["query".into()]), "{body}");

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id <> 'terminal-EVSE-DOC'")
        .fetch_one(&app.running.state.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "only the one accepted registration appended");

    // A driver's WALLET payment names no customer: its own, from its token.
    let company = Uuid::new_v4();
    let driver = app.token(company, Role::Driver);
    let operator = app.token(company, Role::Operator);
    let wallet = json!({"amount": 100, "method": "WALLET"});
    let (status, body) = json_of(app.post("/v1/payment-intents", &driver, &wallet).send().await.unwrap()).await;
    assert_eq!((status, body["customer"]["customerId"].as_str()), (201, Some("tester")), "{body}");
    let (status, body) = json_of(app.post("/v1/payment-intents", &operator, &wallet).send().await.unwrap()).await;
    assert_eq!((status, fields(&body)), (422, vec!["customer.customerId".into()]), "{body}");

    // `5000.0` and `5000` under one Idempotency-Key are one request (replayed, not "key reused").
    let send = |amount: Value| {
        app.post("/v1/payment-intents", &operator, &json!({"amount": amount, "method": "PIX"}))
            .header("Idempotency-Key", "same-amount")
            .send()
    };
    let first = send(json!(5000.0)).await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let again = send(json!(5000)).await.unwrap();
    assert_eq!(
        (again.status().as_u16(), again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok())),
        (201, Some("true"))
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn routes_read_the_platforms_clock(pool: PgPool) {
    // The platform's clock runs a day ahead: a route's `now` is that clock's,
    // not the system's, so a health event an hour "in the future" by the
    // system clock (beyond the 5 minutes of skew allowed) is in the past.
    let config = test_config(&pool);
    config.clock.advance(std::time::Duration::from_secs(86_400));
    let app = TestApp::start_with(config, pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let (status, created) =
        json_of(app.post("/v1/terminals", &token, &terminal("EVSE-CLOCK", 1)).send().await.unwrap()).await;
    assert_eq!(status, 201, "{created}");
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let event = json!({"kind": "fault", "code": "X1", "message": "hot", "timestamp": at});
    let (status, body) =
        json_of(app.post("/v1/terminals/EVSE-CLOCK/health-events", &token, &event).send().await.unwrap()).await;
    assert_eq!(status, 201, "an hour ahead of the system clock is a day behind the platform's: {body}");
}
