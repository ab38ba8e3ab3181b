//! Starting the real app on port 0 against the test's fresh database.
#![allow(dead_code, clippy::unwrap_used)]

pub mod charger;
pub mod kafka;
pub mod pagarme;
pub mod receiver;
pub mod smtp;

use chargeledger_api::{
    app::{self, Running},
    auth::{self, Role},
    config::Config,
};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub struct TestApp {
    pub running: Running,
    pub client: Client,
    pub config: Config,
}

/// Configuration pointing at the test's own database, with the credentials of
/// DATABASE_URL (the server sqlx::test created it on).
pub fn test_config(pool: &PgPool) -> Config {
    let opts = pool.connect_options();
    let db = opts.get_database().unwrap_or("postgres");
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
    Config::for_tests(format!("{base}/{db}"))
}

impl TestApp {
    pub async fn start(pool: PgPool) -> Self {
        Self::start_with(test_config(&pool), pool).await
    }

    pub async fn start_with(config: Config, pool: PgPool) -> Self {
        // Errors the server logs show up in the failing test's output.
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
        let running = app::start(config.clone(), pool, true).await.unwrap();
        Self { running, client: Client::new(), config }
    }

    pub fn token(&self, company: Uuid, role: Role) -> String {
        auth::mint_token(&self.config, "tester", company, role, chrono::Duration::hours(1)).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    pub fn get(&self, path: &str, token: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(token).json(body)
    }

    pub fn put(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.client.put(self.url(path)).bearer_auth(token).json(body)
    }
}

pub fn terminal(id: &str, station: i64) -> Value {
    json!({
        "id": id,
        "stationId": station,
        "vendor": "ABB",
        "model": "Terra AC",
        "ocppVersion": "1.6",
        "connectors": [{"id": 1, "type": "Type2", "maxPowerW": 22000}, {"id": 2, "type": "CCS2", "maxPowerW": 50000}],
        "chargerPassword": "a-long-enough-secret-1"
    })
}

/// Status and JSON body; asserts problem+json on errors.
pub async fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(content_type, "application/problem+json", "error {status} without problem+json: {body}");
        assert!(body["type"].as_str().unwrap_or("").starts_with("urn:chargeledger:problem:"), "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert!(body["detail"].is_string(), "{body}");
    }
    (status, body)
}

/// The test venv's Python (created by scripts/test.sh): charge points, the SMTP sink, the webhook receiver.
pub fn python() -> std::path::PathBuf {
    std::env::var_os("CHARGELEDGER_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python")))
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Seals what is committed, then checks every stream chain and seal: the
/// auditor's `audit verify`, asserted.
pub async fn assert_log_verifies(store: &commands::EventStore) {
    commands::seal::seal_all(store).await.unwrap();
    let report = commands::audit::verify(store).await.unwrap();
    assert!(report.ok(), "{report:?}");
}
