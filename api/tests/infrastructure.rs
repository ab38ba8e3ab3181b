//! Charging Infrastructure (seed 002) against real charge points: the PyPI
//! `ocpp` package (tests/ocpp/chargepoint.py, scenario `infra16`, and `serve201`)
//! connects to the gateway; mappings, connectivity tests, connector statuses,
//! adapter health and write-only adapter credentials are checked through the API,
//! the log and the database.
#![allow(clippy::unwrap_used)]

mod support;

use std::{future::Future, time::Duration};

use chargeledger_api::auth::Role;
use reqwest::RequestBuilder;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, *};
use uuid::Uuid;

#[path = "infrastructure/adapters.rs"]
mod adapters;
#[path = "infrastructure/connectivity.rs"]
mod connectivity;
#[path = "infrastructure/connectors.rs"]
mod connectors;
#[path = "infrastructure/mappings.rs"]
mod mappings;

struct Setup {
    app: TestApp,
    token: String,
    company: Uuid,
    base: String,
}

async fn setup(pool: PgPool) -> Setup {
    let app = TestApp::start(pool).await;
    let company = Uuid::new_v4();
    let token = app.token(company, Role::Operator);
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    Setup { app, token, company, base }
}

fn at(path: &str) -> String {
    format!("/v1/charging-infrastructure{path}")
}

async fn send(request: RequestBuilder) -> (u16, Value) {
    json_of(request.send().await.unwrap()).await
}

impl Setup {
    fn patch(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.app.client.patch(self.app.url(path)).bearer_auth(token).json(body)
    }

    fn delete(&self, path: &str, token: &str) -> RequestBuilder {
        self.app.client.delete(self.app.url(path)).bearer_auth(token)
    }

    async fn register(&self, token: &str, id: &str, station: i64, version: &str) {
        let mut body = terminal(id, station);
        body["ocppVersion"] = json!(version);
        let (status, body) = send(self.app.post("/v1/terminals", token, &body)).await;
        assert_eq!(status, 201, "{body}");
    }

    async fn map(&self, station: i64, charge_points: &[&str]) -> Value {
        let body = json!({"stationId": station, "adapterType": "ocpp", "chargePointIds": charge_points});
        let (status, body) = send(self.app.post(&at("/mappings"), &self.token, &body)).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn test(&self, mapping: &Value) -> Value {
        let path = at(&format!("/mappings/{}/test", mapping["id"].as_str().unwrap()));
        let (status, body) = send(self.app.client.post(self.app.url(&path)).bearer_auth(&self.token)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = send(self.app.get(path, &self.token)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Sends a DataTransfer the `infra16` charge point acts on (`status` or `quit`).
    async fn tell(&self, charge_point: &str, message_id: &str, data: &str) {
        let body = json!({"action": "DataTransfer",
            "payload": {"vendorId": "chargeledger.test", "messageId": message_id, "data": data}});
        let (status, body) =
            send(self.app.post(&format!("/v1/terminals/{charge_point}/commands"), &self.token, &body)).await;
        assert_eq!((status, body["response"]["status"].as_str()), (200, Some("Accepted")), "{body}");
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.app.running.state.pool).await.unwrap()
    }

    async fn health(&self) -> Value {
        let report = self.get(&at("/adapters/health")).await;
        report["adapters"].as_array().unwrap().iter().find(|a| a["adapterType"] == "ocpp").unwrap().clone()
    }
}

/// Polls `check` until it returns `Some` (10 s at most).
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen in time");
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}
