//! The role matrix (issue 10, rules 2 and 3): every operation of the OpenAPI
//! document against every role, from a table written here (not the code's);
//! then ownership (a driver sees only its own sessions, intents and wallet)
//! and the tariff a driver may not choose.
#![allow(clippy::unwrap_used)]

#[path = "roles/ownership.rs"]
mod ownership;
mod support;

use std::collections::BTreeSet;

use chargeledger_api::auth::{self, Role};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::*;
use uuid::Uuid;

/// Who may call each operation, by letter: A admin, O operator, V viewer,
/// D driver, S service; `*` needs no credentials at all. Written by hand from
/// issue 10's matrix; every operation of the OpenAPI document must be here.
const MATRIX: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/webhooks", "AOV"),
    ("POST", "/api/v1/webhooks", "AO"),
    ("GET", "/api/v1/webhooks/{id}", "AOV"),
    ("PUT", "/api/v1/webhooks/{id}", "AO"),
    ("DELETE", "/api/v1/webhooks/{id}", "AO"),
    ("GET", "/api/v1/webhooks/{id}/deliveries", "AOV"),
    ("POST", "/api/v1/webhooks/{id}/rotate-secret", "AO"),
    ("POST", "/api/v1/webhooks/{id}/test", "AO"),
    // A driver starts only when the server trusts client tariffs (off here).
    ("POST", "/charge/start", "AO"),
    ("POST", "/charge/stop", "AOD"),
    ("GET", "/health", "*"),
    ("GET", "/health/detailed", "*"),
    ("GET", "/health/live", "*"),
    ("GET", "/health/ready", "*"),
    ("GET", "/metrics", "*"),
    ("GET", "/v1/adhoc-charges", "AOVDS"),
    ("POST", "/v1/adhoc-charges/start", "AOS"),
    ("GET", "/v1/adhoc-charges/{id}", "AOVDS"),
    ("POST", "/v1/adhoc-charges/{id}/complete", "AOS"),
    ("PUT", "/v1/adhoc-charges/{id}/progress", "AOS"),
    ("GET", "/v1/charge-sessions/{id}", "AOVDS"),
    ("GET", "/v1/charge-sessions/{id}/events", "AOV"),
    ("POST", "/v1/charge-sessions/{id}/refunds", "AO"),
    ("GET", "/v1/charging-infrastructure/adapters/health", "AOV"),
    ("GET", "/v1/charging-infrastructure/config", "AOV"),
    ("PATCH", "/v1/charging-infrastructure/config/{adapterType}", "AO"),
    ("GET", "/v1/charging-infrastructure/connectors", "AOVD"),
    ("GET", "/v1/charging-infrastructure/connectors/summary", "AOVD"),
    ("GET", "/v1/charging-infrastructure/mappings", "AOV"),
    ("POST", "/v1/charging-infrastructure/mappings", "AO"),
    ("GET", "/v1/charging-infrastructure/mappings/{id}", "AOV"),
    ("DELETE", "/v1/charging-infrastructure/mappings/{id}", "AO"),
    ("PATCH", "/v1/charging-infrastructure/mappings/{id}", "AO"),
    ("POST", "/v1/charging-infrastructure/mappings/{id}/test", "AO"),
    // Authenticated by the gateway's own credentials, never by a role.
    ("POST", "/v1/gateways/pagarme/webhooks", "*"),
    ("GET", "/v1/payment-intents", "AOVD"),
    ("POST", "/v1/payment-intents", "AOD"),
    ("GET", "/v1/payment-intents/{id}", "AOVD"),
    ("POST", "/v1/payment-intents/{id}/authorize", "AOD"),
    ("POST", "/v1/payment-intents/{id}/capture", "AO"),
    ("GET", "/v1/payment-intents/{id}/events", "AOV"),
    ("POST", "/v1/payment-intents/{id}/refund", "AO"),
    ("POST", "/v1/payment-intents/{id}/void", "AO"),
    ("GET", "/v1/terminals", "AOVD"),
    ("POST", "/v1/terminals", "AO"),
    ("GET", "/v1/terminals/stats", "AOV"),
    ("GET", "/v1/terminals/{id}", "AOVD"),
    ("POST", "/v1/terminals/{id}/charging-profiles", "AO"),
    ("POST", "/v1/terminals/{id}/commands", "AO"),
    ("GET", "/v1/terminals/{id}/commands/{commandId}", "AOV"),
    ("GET", "/v1/terminals/{id}/connectors", "AOVD"),
    ("POST", "/v1/terminals/{id}/health-events", "AO"),
    ("POST", "/v1/terminals/{id}/remote-start", "AO"),
    ("POST", "/v1/terminals/{id}/remote-stop", "AO"),
    ("PUT", "/v1/terminals/{id}/charger-password", "AO"),
    ("PUT", "/v1/terminals/{id}/status", "AO"),
    ("GET", "/v1/terminals/{id}/transactions", "AOV"),
    ("GET", "/v1/wallets/{customerId}", "AOVD"),
    ("POST", "/v1/wallets/{customerId}/top-ups", "AOD"),
];

/// Events that are not seals (the sealer appends on its own schedule).
async fn log_size(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type <> 'log.range_sealed'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A credential: a JWT or an API key.
#[derive(Clone)]
enum Credential {
    Jwt(String),
    ApiKey(String),
}

struct Callers {
    /// (name, matrix letter, credential).
    all: Vec<(String, char, Credential)>,
}

fn token(app: &TestApp, sub: &str, company: Uuid, role: Role) -> String {
    auth::mint_token(&app.config, sub, company, role, chrono::Duration::hours(1)).unwrap()
}

async fn callers(app: &TestApp, pool: &PgPool, company: Uuid) -> Callers {
    let mut all = vec![];
    for (role, letter) in
        [(Role::Admin, 'A'), (Role::Operator, 'O'), (Role::Viewer, 'V'), (Role::Driver, 'D'), (Role::Service, 'S')]
    {
        all.push((format!("{} token", role.as_str()), letter, Credential::Jwt(token(app, "driver-a", company, role))));
    }
    for (role, letter) in [(Role::Operator, 'O'), (Role::Viewer, 'V'), (Role::Service, 'S')] {
        let (_, key) = auth::create_api_key(pool, company, role, "matrix").await.unwrap();
        all.push((format!("{} API key", role.as_str()), letter, Credential::ApiKey(key)));
    }
    Callers { all }
}

fn request(app: &TestApp, method: &str, path: &str, credential: Option<&Credential>) -> reqwest::RequestBuilder {
    let concrete = path
        .replace("{customerId}", "driver-a")
        .replace("{adapterType}", "ocpp")
        .replace("{commandId}", &Uuid::new_v4().to_string())
        .replace(
            "{id}",
            if path.starts_with("/v1/terminals/") { "EVSE-NOPE" } else { "0193a6f3-0000-7000-8000-00000000dead" },
        );
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut builder = app.client.request(method.clone(), app.url(&concrete));
    if matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        builder = builder.json(&json!({}));
    }
    match credential {
        Some(Credential::Jwt(t)) => builder.bearer_auth(t),
        Some(Credential::ApiKey(k)) => builder.header("x-api-key", k),
        None => builder,
    }
}

/// Every (method, path) of the OpenAPI document.
fn operations() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(&chargeledger_api::openapi::json()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"].contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[sqlx::test(migrations = "../migrations")]
async fn every_operation_of_the_openapi_document_answers_every_role_as_the_matrix_says(pool: PgPool) {
    let documented = operations();
    let table: BTreeSet<(String, String)> = MATRIX.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let unclassified: Vec<_> = documented.difference(&table).collect();
    assert!(unclassified.is_empty(), "operations missing from the role matrix (classify them): {unclassified:?}");
    let stale: Vec<_> = table.difference(&documented).collect();
    assert!(stale.is_empty(), "matrix rows with no OpenAPI operation: {stale:?}");

    let app = TestApp::start(pool.clone()).await;
    let company = Uuid::new_v4();
    let callers = callers(&app, &pool, company).await;
    // A driver is its token's subject: there are no driver API keys.
    assert!(auth::create_api_key(&pool, company, Role::Driver, "driver").await.is_err());
    let mut failures = vec![];
    for (method, path, allowed) in MATRIX {
        if *allowed != "*" {
            let before = log_size(&pool).await;
            let (status, _) = json_of(request(&app, method, path, None).send().await.unwrap()).await;
            if status != 401 || log_size(&pool).await != before {
                failures
                    .push(format!("{method} {path} without credentials: {status} (expected 401, nothing appended)"));
            }
        }
        for (name, letter, credential) in &callers.all {
            let before = log_size(&pool).await;
            let response = request(&app, method, path, Some(credential)).send().await.unwrap();
            let status = response.status().as_u16();
            let content_type =
                response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let may = *allowed == "*" || allowed.contains(*letter);
            if may {
                if (status == 401 && *allowed != "*") || status == 403 {
                    failures.push(format!("{method} {path} as {name}: {status} but the role is allowed: {body}"));
                }
            } else {
                let appended = log_size(&pool).await - before;
                if status != 403 || content_type != "application/problem+json" || appended != 0 {
                    failures.push(format!(
                        "{method} {path} as {name}: {status} {content_type}, {appended} events appended \
                         (expected 403 problem+json, nothing appended): {body}"
                    ));
                } else {
                    assert_eq!(body["type"], "urn:chargeledger:problem:forbidden", "{body}");
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} deviations from the matrix:\n{}", failures.len(), failures.join("\n"));
    assert_log_verifies(&app.running.state.store).await;
}
