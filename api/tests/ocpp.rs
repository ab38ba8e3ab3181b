//! The OCPP gateway against real charge points: the PyPI `ocpp` package
//! (mobilityhouse), which validates every message in both directions against the
//! official OCA schemas, drives the gateway for OCPP 1.6-J and 2.0.1.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, *};
use uuid::Uuid;

#[path = "ocpp/connections.rs"]
mod connections;
#[path = "ocpp/rest_commands.rs"]
mod rest_commands;
#[path = "ocpp/transactions.rs"]
mod transactions;

async fn register(s: &Setup, id: &str, version: &str) {
    let mut body = terminal(id, 7);
    body["ocppVersion"] = json!(version);
    let (status, body) = json_of(s.app.post("/v1/terminals", &s.token, &body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
}

async fn scalar(s: &Setup, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&s.app.running.state.pool).await.unwrap()
}

/// Waits until the read models have applied everything.
async fn caught_up(s: &Setup) {
    let store = &s.app.running.state.store;
    for _ in 0..500 {
        let head = store.head_position().await.unwrap();
        let held = store.held_back_after(head).await.unwrap();
        let mut behind = false;
        for name in ["terminals", "ocpp"] {
            behind |= projections::runtime::checkpoint(store.pool(), name).await.unwrap() < head;
        }
        if !held && !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("projections did not catch up");
}
