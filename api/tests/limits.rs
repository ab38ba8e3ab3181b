//! Abuse limits of the REST API (issue 10 rule 8, issue 21 item 2): rate
//! limits per credential, body size, request timeouts, health pages that do
//! not leak database errors, and stalled handshakes closed by the server.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chargeledger_api::{auth, auth::Role, config::Config};
use serde_json::json;
use sqlx::PgPool;
use support::{charger::*, *};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

async fn start(pool: PgPool, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(&pool);
    configure(&mut config);
    TestApp::start_with(config, pool).await
}

fn token_of(app: &TestApp, sub: &str, company: Uuid) -> String {
    auth::mint_token(&app.config, sub, company, Role::Viewer, chrono::Duration::hours(1)).unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn one_credential_over_its_limit_gets_429_while_another_is_unaffected(pool: PgPool) {
    let app = start(pool, |c| {
        c.limits.rate_per_min = 1;
        c.limits.rate_burst = 3;
        c.limits.anon_rate_per_min = 1;
        c.limits.anon_burst = 2;
    })
    .await;
    let company = Uuid::new_v4();
    let (alice, bob) = (token_of(&app, "alice", company), token_of(&app, "bob", company));
    let mut statuses = vec![];
    for _ in 0..5 {
        let response = app.get("/v1/terminals", &alice).send().await.unwrap();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = json_of(response).await;
        if status == 429 {
            assert_eq!(body["type"], "urn:chargeledger:problem:rate-limited", "{body}");
            let secs: u64 = retry_after.expect("429 carries Retry-After").parse().unwrap();
            assert!(secs >= 1);
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Another subject of the same company, and the same subject in another company: own buckets.
    assert_eq!(json_of(app.get("/v1/terminals", &bob).send().await.unwrap()).await.0, 200);
    let elsewhere = token_of(&app, "alice", Uuid::new_v4());
    assert_eq!(json_of(app.get("/v1/terminals", &elsewhere).send().await.unwrap()).await.0, 200);
    // An API key is a credential of its own.
    let (_, key) = auth::create_api_key(&app.running.state.pool, company, Role::Viewer, "limits").await.unwrap();
    let mut keyed = vec![];
    for _ in 0..4 {
        let response = app.client.get(app.url("/v1/terminals")).header("x-api-key", &key).send().await.unwrap();
        keyed.push(json_of(response).await.0);
    }
    assert_eq!(keyed, [200, 200, 200, 429]);
    // Without valid credentials the source address is limited (bad tokens too).
    let mut anonymous = vec![];
    for _ in 0..3 {
        anonymous.push(json_of(app.get("/v1/terminals", "not-a-token").send().await.unwrap()).await.0);
    }
    assert_eq!(anonymous, [401, 401, 429]);
    // Once the address's budget is spent, API keys from it are not even looked
    // up (each costs a database query): a flood of made-up keys is refused
    // before the database, and so, from that address, is a valid key.
    let bogus = app.client.get(app.url("/v1/terminals")).header("x-api-key", "clk_made-up").send().await.unwrap();
    assert_eq!(json_of(bogus).await.0, 429);
    let (_, fresh) = auth::create_api_key(&app.running.state.pool, company, Role::Viewer, "fresh").await.unwrap();
    let valid = app.client.get(app.url("/v1/terminals")).header("x-api-key", &fresh).send().await.unwrap();
    assert_eq!(json_of(valid).await.0, 429);
    // Probes are not limited.
    for _ in 0..5 {
        assert_eq!(app.client.get(app.url("/health/live")).send().await.unwrap().status(), 200);
    }
    app.running.stop().await;
}

async fn raw_request(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_body_over_the_limit_gets_413_problem(pool: PgPool) {
    let app = start(pool, |c| c.limits.max_body_bytes = 2048).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    let padded = |size: usize| {
        let mut body = json!({"amount": 1000, "method": "CREDIT_CARD"}).to_string();
        body.push_str(&" ".repeat(size - body.len()));
        body
    };
    let send = |body: String| {
        app.client
            .post(app.url("/v1/payment-intents"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, body) = json_of(send(padded(2049)).await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (413, Some("urn:chargeledger:problem:payload-too-large")), "{body}");
    // At the limit it is accepted.
    assert_eq!(json_of(send(padded(2048)).await.unwrap()).await.0, 201);
    // A chunked body (no Content-Length) is cut at the limit too.
    let chunk = "x".repeat(3000);
    let request = format!(
        "POST /v1/payment-intents HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let answer = raw_request(app.running.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json") && answer.contains("payload-too-large"), "{answer}");
    // Other routes (a body the handler buffers itself) answer the same problem.
    let response = app
        .client
        .post(app.url("/v1/gateways/pagarme/webhooks"))
        .header("content-type", "application/json")
        .body(padded(4096))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!((status, body["type"].as_str()), (413, Some("urn:chargeledger:problem:payload-too-large")), "{body}");
    app.running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_over_the_timeout_gets_a_timeout_problem_and_frees_its_key(pool: PgPool) {
    let app = start(pool.clone(), |c| c.limits.request_timeout = Duration::from_millis(500)).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let (status, body) =
        json_of(app.post("/v1/terminals", &token, &terminal("EVSE-SLOW", 7)).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    // A charger that never answers UnlockConnector: the handler waits for it far
    // longer than the request may take.
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    let mut cp = Cp::spawn("serve16", &base, "EVSE-SLOW", PASSWORD, &["99", "slow"]);
    cp.until("READY").await;
    let unlock = json!({"action": "UnlockConnector", "payload": {"connectorId": 1}, "timeoutMs": 30000});
    let response = app
        .post("/v1/terminals/EVSE-SLOW/commands", &token, &unlock)
        .header("idempotency-key", "unlock-1")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!((status, body["type"].as_str()), (503, Some("urn:chargeledger:problem:request-timeout")), "{body}");
    // The cancelled request's key is released (bounded wait for the release),
    // so a retry runs again instead of meeting a 409.
    let mut released = false;
    for _ in 0..100 {
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotent_responses WHERE key = 'unlock-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if held == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released);
    let response = app
        .post("/v1/terminals/EVSE-SLOW/commands", &token, &unlock)
        .header("idempotency-key", "unlock-1")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await.0, 503);
    drop(cp);
    app.running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn health_and_metrics_do_not_echo_database_errors(pool: PgPool) {
    let config = test_config(&pool);
    let gone = format!("chargeledger_gone_{}", Uuid::new_v4().simple());
    let (base, _) = config.database_url.rsplit_once('/').unwrap();
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(&format!("{base}/{gone}"))
        .unwrap();
    let running = chargeledger_api::app::start(config, dead, false).await.unwrap();
    let client = reqwest::Client::new();
    for path in ["/health/detailed", "/metrics", "/health/ready"] {
        let response = client.get(running.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(!text.contains(&gone) && !text.contains("does not exist"), "{path} echoes the database error: {text}");
        if path == "/health/detailed" {
            assert_eq!(status, 503);
            let body: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["postgres"]["status"], "down");
            assert_eq!(body["postgres"]["error"], "postgres is unreachable");
        }
    }
    running.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_can_move_to_their_own_address(pool: PgPool) {
    let app = start(pool, |c| c.limits.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics = app.running.metrics_addr.unwrap();
    for path in ["/metrics", "/health/detailed"] {
        assert_eq!(app.client.get(app.url(path)).send().await.unwrap().status(), 404, "{path} on the API port");
        let on_own = app.client.get(format!("http://{metrics}{path}")).send().await.unwrap();
        assert_eq!(on_own.status(), 200, "{path} on the metrics address");
    }
    app.running.stop().await;
}

/// Reads until the server closes the connection (EOF or reset), within a generous bound.
async fn closed_by_server(mut stream: tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.unwrap_or(false)
}

#[sqlx::test(migrations = "../migrations")]
async fn stalled_handshakes_on_the_rest_port_are_closed(pool: PgPool) {
    let app = start(pool, |c| c.limits.header_read_timeout = Duration::from_millis(300)).await;
    let addr = app.running.addr;
    // Nothing sent.
    let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A request line only.
    let mut line_only = tokio::net::TcpStream::connect(addr).await.unwrap();
    line_only.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    // Headers trickled, a byte at a time, never finished.
    let trickled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read_half, mut write_half) = trickled.into_split();
    let trickle = tokio::spawn(async move {
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle().take(600) {
            if write_half.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(closed_by_server(silent).await, "a silent connection stays open");
    assert!(closed_by_server(line_only).await, "a request line alone keeps the connection");
    let mut buf = [0u8; 64];
    let trickle_closed = tokio::time::timeout(Duration::from_secs(60), async {
        matches!(read_half.read(&mut buf).await, Ok(0) | Err(_))
    })
    .await
    .unwrap_or(false);
    assert!(trickle_closed, "trickled headers keep the connection");
    trickle.abort();
    // A complete request is still answered.
    let answer = raw_request(addr, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.running.stop().await;
}
