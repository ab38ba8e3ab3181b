//! Helpers shared by the log tests.
#![allow(dead_code, clippy::unwrap_used)]

use chargeledger_commands::{
    CommandContext, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamWrite,
};
use chrono::Utc;
use domain::{
    terminal::{Connector, ConnectorType, OcppVersion, RegisterTerminal, TerminalCommand},
    CompanyId, TerminalId,
};
use serde_json::json;
use sqlx::{postgres::PgPoolOptions, PgPool};
use uuid::Uuid;

/// A pool with room for many concurrent writers on the test's database.
pub async fn wide_pool(pool: &PgPool, connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap()
}

pub fn new_event(n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "test.happened".into(),
        schema_version: 1,
        payload: json!({ "n": n }),
    }
}

pub fn write(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamWrite {
    StreamWrite { stream_id: stream.into(), expected, prev_hash: None, events, metadata: Metadata::system("test") }
}

/// Waits until every committed event is readable. Readers only see events below
/// the watermark, which an unrelated open transaction can hold back for a moment.
pub async fn settle(store: &EventStore) {
    for _ in 0..2000 {
        let head = store.head_position().await.unwrap();
        if !store.held_back_after(head).await.unwrap() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the log did not settle");
}

/// Every committed event, read in global order. The watermark may dip for a
/// moment (a transaction of another database that has just ended can still be
/// in a snapshot after pg_stat_activity stopped placing it elsewhere): that
/// delays a reader, never makes it skip, so this reads on until it has as many
/// events as the table holds committed.
pub async fn read_everything(store: &EventStore) -> Vec<RecordedEvent> {
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(store.pool()).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..2000 {
        settle(store).await;
        loop {
            let batch = store.read_all(out.last().map_or(0, |e: &RecordedEvent| e.position), 1000).await.unwrap();
            if batch.is_empty() {
                break;
            }
            out.extend(batch);
        }
        if out.len() as i64 >= committed {
            return out;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    out
}

pub fn ctx(company: Uuid, command_id: Option<&str>, request: &str) -> CommandContext {
    CommandContext {
        company_id: company,
        command_id: command_id.map(str::to_owned),
        request_hash: request.as_bytes().to_vec(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "user:test".into(),
    }
}

pub fn register(company: Uuid, id: &str) -> TerminalCommand {
    TerminalCommand::Register(RegisterTerminal {
        company_id: CompanyId(company),
        terminal_id: TerminalId::parse(id).unwrap(),
        station_id: 10,
        vendor: "ABB".into(),
        model: "Terra 54".into(),
        ocpp_version: OcppVersion::V16,
        connectors: vec![Connector { id: 1, connector_type: ConnectorType::CCS2, max_power_w: 50_000 }],
        password_hash: None,
        security_profile: Some(0),
        now: Utc::now(),
    })
}
