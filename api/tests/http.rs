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

#[path = "http/client.rs"]
mod client;
#[path = "http/contract.rs"]
mod contract;
#[path = "http/terminals.rs"]
mod terminals;
#[path = "http/writes.rs"]
mod writes;

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
async fn the_five_health_endpoints(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    json_of(app.post("/v1/terminals", &token, &terminal("EVSE-H", 1)).send().await.unwrap()).await;
    for path in ["/health", "/health/live", "/health/ready"] {
        let (status, body) = json_of(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{path}");
    }
    // The projector catches up on its own tick (under load, after the write's
    // bounded read-your-writes wait gave up): give it that tick, bounded.
    let (mut status, mut detailed) = (0, Value::Null);
    for _ in 0..100 {
        (status, detailed) = json_of(app.client.get(app.url("/health/detailed")).send().await.unwrap()).await;
        if detailed["projectors"][0]["lagEvents"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(detailed["postgres"]["status"], "up");
    assert_eq!(detailed["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(detailed["projectors"][0]["name"], "terminals");
    assert_eq!(detailed["projectors"][0]["lagEvents"], 0);
    assert!(detailed["projectors"][0]["checkpoint"].as_i64().unwrap() > 0);

    // Likewise for the sealer's seal of that write, which the projector also passes.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.contains(r#"chargeledger_projector_lag_events{projector="terminals"} 0"#) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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

/// What a client generated from the document relies on (issue 13): errors are
/// problem+json, every operation lists the errors the shared layers send,
/// parameters are where the server reads them, operation ids are unique.
#[test]
fn the_document_describes_every_error_and_parameter_as_the_server_sends_them() {
    let doc: Value = serde_json::from_str(&openapi::json()).unwrap();
    let resolve = |r: &Value| -> Value {
        match r["$ref"].as_str() {
            Some(at) => doc.pointer(&at.replacen('#', "", 1)).cloned().unwrap_or(Value::Null),
            None => r.clone(),
        }
    };
    let mut ids = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()), "{at}: operationId repeats");
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                let resolved = resolve(response);
                let content: Vec<&String> =
                    resolved["content"].as_object().map(|c| c.keys().collect()).unwrap_or_default();
                // The one error with its own body: the detailed health report.
                let own_body = (path.as_str(), status.as_str()) == ("/health/detailed", "503");
                if status.as_str() >= "400" && !own_body && content != ["application/problem+json"] {
                    problems.push(format!("{at} {status}: {content:?}"));
                }
            }
            let has = |s: &str| responses.contains_key(s);
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let query = params.iter().any(|p| p["in"] == "query");
            let key = params.iter().any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key");
            if op["requestBody"].is_object() && !(has("400") && has("413") && has("422")) {
                problems.push(format!("{at}: a body without 400/413/422"));
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) && !(has("401") && has("403") && has("429")) {
                problems.push(format!("{at}: secured without 401/403/429"));
            }
            if (query || key) && !has("422") || key && !has("409") || path.contains('{') && !has("404") {
                problems.push(format!("{at}: a query, key or path id without its 422/409/404"));
            }
            for p in &params {
                let name = p["name"].as_str().unwrap();
                if p["in"] == "path" && !path.contains(&format!("{{{name}}}")) {
                    problems.push(format!("{at}: path parameter {name} is not in the path"));
                }
                if p["schema"]["type"].as_array().is_some_and(|t| t.iter().any(|t| t == "null")) {
                    problems.push(format!("{at}: parameter {name} may be null"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let limit = doc["paths"]["/v1/terminals"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        (limit["in"].as_str(), limit["schema"]["minimum"].as_i64(), limit["schema"]["maximum"].as_i64()),
        (Some("query"), Some(1), Some(200))
    );
    // Amounts carry the range the domain enforces (1 to 10,000,000 cents).
    for schema in ["CreateIntentRequest", "TopUpRequest", "StartChargeDto"] {
        let amount = &doc["components"]["schemas"][schema]["properties"]["amount"];
        assert_eq!((amount["minimum"].as_i64(), amount["maximum"].as_i64()), (Some(1), Some(10_000_000)), "{schema}");
    }
}

/// A list filter that names no status is refused, as the document's enum says,
/// on every list that filters by status (two used to answer an empty page).
#[sqlx::test(migrations = "../migrations")]
async fn a_status_filter_outside_its_names_is_refused(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    let doc: Value = serde_json::from_str(&openapi::json()).unwrap();
    for path in [
        "/v1/terminals",
        "/v1/payment-intents",
        "/v1/adhoc-charges",
        "/api/v1/webhooks",
        "/v1/charging-infrastructure/connectors",
    ] {
        let status = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "status"))
            .cloned()
            .unwrap_or(Value::Null);
        let names: Vec<String> =
            status["schema"]["enum"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect();
        assert!(names.len() >= 3, "{path}: {names:?}");
        for name in &names {
            let (code, body) = json_of(app.get(&format!("{path}?status={name}"), &token).send().await.unwrap()).await;
            assert_eq!(code, 200, "{path}?status={name}: {body}");
        }
        for bad in ["bogus", ""] {
            let (code, body) = json_of(app.get(&format!("{path}?status={bad}"), &token).send().await.unwrap()).await;
            assert_eq!(code, 422, "{path}?status={bad}: {body}");
            assert_eq!(body["errors"][0]["field"], "status", "{body}");
        }
    }
}

/// A cursor is a position of a documented shape (issue 13): any string of
/// that shape is accepted (a page after it), any other is refused; the shape
/// is in the document as a pattern.
#[sqlx::test(migrations = "../migrations")]
async fn a_cursor_of_the_documented_shape_is_a_position(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let token = app.token(Uuid::new_v4(), Role::Admin);
    let doc: Value = serde_json::from_str(&openapi::json()).unwrap();
    let keyset = "1764769200123456.0192e4b0-0000-7000-8000-000000000000";
    for (path, good) in [
        ("/v1/payment-intents", keyset),
        ("/v1/adhoc-charges", keyset),
        ("/api/v1/webhooks", keyset),
        ("/v1/charging-infrastructure/mappings", keyset),
        ("/v1/terminals", "EVSE-0"),
        ("/v1/charging-infrastructure/connectors", "10.0.1.EVSE-0"),
    ] {
        let cursor = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "cursor"))
            .cloned()
            .unwrap_or(Value::Null);
        assert!(cursor["schema"]["pattern"].as_str().is_some_and(|p| p.starts_with('^')), "{path}: {cursor}");
        let (code, body) = json_of(app.get(&format!("{path}?cursor={good}"), &token).send().await.unwrap()).await;
        assert_eq!(code, 200, "{path}?cursor={good}: {body}");
        // Terminal ids are cursors, so only what no id looks like is refused there.
        let bad: &[&str] = if path == "/v1/terminals" { &["x%20y", "%2A"] } else { &["MTIzfGFiYw", "1.2.3", "x%20y"] };
        for bad in bad {
            let (code, body) = json_of(app.get(&format!("{path}?cursor={bad}"), &token).send().await.unwrap()).await;
            assert_eq!(code, 422, "{path}?cursor={bad}: {body}");
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_served_openapi_document_is_the_committed_one(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let served = app.client.get(app.url("/openapi.json")).send().await.unwrap().text().await.unwrap();
    assert_eq!(served, openapi::json());
}

/// `/docs` loads nothing but this server's own files (issue 13): the page
/// refers to same-origin paths only, its policy forbids anything else, and
/// the vendored assets are served byte for byte as `VENDOR.md` records them.
#[sqlx::test(migrations = "../migrations")]
async fn the_docs_page_is_served_from_the_binary(pool: PgPool) {
    use sha2::{Digest, Sha256};
    let app = TestApp::start(pool).await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            refs.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    assert!(refs.len() >= 4, "{refs:?}");
    for r in &refs {
        assert!(r.starts_with('/') && !r.starts_with("//"), "not same-origin: {r}");
        let status = app.client.get(app.url(r)).send().await.unwrap().status();
        assert_eq!(status, 200, "{r}");
    }
    let vendor = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/docs/VENDOR.md")).unwrap();
    for (file, content_type) in [("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")] {
        let response = app.client.get(app.url(&format!("/docs/{file}"))).send().await.unwrap();
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(content_type));
        let body = response.bytes().await.unwrap();
        let row = vendor.lines().find(|l| l.starts_with(&format!("| {file} |"))).unwrap();
        assert!(row.contains(&hex::encode(Sha256::digest(&body))), "{file} is not the vendored file: {row}");
        assert!(!String::from_utf8_lossy(&body).contains("cdn.jsdelivr"), "{file}");
    }
    let init = app.client.get(app.url("/docs/init.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/openapi.json") && init.contains("validatorUrl: null"), "{init}");
}
