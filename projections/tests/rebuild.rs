//! The projector runtime against a real Postgres: catch-up, and a rebuilt read
//! model equal to the live one.
#![allow(clippy::unwrap_used)]

use chargeledger_projections::{runtime, terminals::TerminalsProjector, Projector};
use chrono::Utc;
use commands::{terminals, CommandContext, EventStore};
use domain::{
    terminal::{
        ChangeStatus, Connector, ConnectorType, HealthKind, OcppVersion, RegisterTerminal, ReportHealth, Severity,
        TerminalCommand, TerminalStatus,
    },
    CompanyId, TerminalId,
};
use sqlx::PgPool;
use uuid::Uuid;

fn ctx(company: Uuid) -> CommandContext {
    CommandContext {
        company_id: company,
        command_id: None,
        request_hash: vec![],
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: "user:test".into(),
    }
}

async fn history(store: &EventStore, prefix: &str) {
    for c in 0..3 {
        let company = Uuid::new_v4();
        for t in 0..4 {
            let id = TerminalId::parse(&format!("{prefix}-{c}-{t}")).unwrap();
            let register = TerminalCommand::Register(RegisterTerminal {
                company_id: CompanyId(company),
                terminal_id: id.clone(),
                station_id: 10 + c,
                vendor: "ABB".into(),
                model: "Terra".into(),
                ocpp_version: OcppVersion::V201,
                connectors: vec![Connector { id: 1, connector_type: ConnectorType::Type2, max_power_w: 22_000 }],
                password_hash: None,
                security_profile: Some(0),
                now: Utc::now(),
            });
            terminals::handle(store, &ctx(company), &id, register).await.unwrap();
            let fault = TerminalCommand::ReportHealth(ReportHealth {
                company_id: CompanyId(company),
                kind: if t % 2 == 0 { HealthKind::Fault } else { HealthKind::Heartbeat },
                severity: if t % 2 == 0 { Severity::Critical } else { Severity::Info },
                code: None,
                message: Some(format!("report {t}")),
                occurred_at: Utc::now(),
                now: Utc::now(),
            });
            terminals::handle(store, &ctx(company), &id, fault).await.unwrap();
            if t == 3 {
                let status = TerminalCommand::ChangeStatus(ChangeStatus {
                    company_id: CompanyId(company),
                    status: TerminalStatus::Available,
                    reason: Some("commissioned".into()),
                    now: Utc::now(),
                });
                terminals::handle(store, &ctx(company), &id, status).await.unwrap();
            }
        }
    }
}

async fn snapshot(pool: &PgPool) -> (Vec<String>, Vec<String>) {
    let terminals = sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_terminals.terminals t ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let health = sqlx::query_scalar("SELECT row_to_json(h)::text FROM rm_terminals.health_events h ORDER BY event_id")
        .fetch_all(pool)
        .await
        .unwrap();
    (terminals, health)
}

async fn settle(store: &EventStore) {
    for _ in 0..2000 {
        let head = store.head_position().await.unwrap();
        if !store.held_back_after(head).await.unwrap() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rebuilt_read_model_equals_the_live_one(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    history(&store, "EVSE").await;
    settle(&store).await;
    let projector = TerminalsProjector;
    let applied = runtime::catch_up(&store, &projector).await.unwrap();
    assert_eq!(applied, 12 + 12 + 6 + 3, "registrations, health reports, fault status changes, operator changes");
    let live = snapshot(&pool).await;
    assert_eq!(live.0.len(), 12);
    assert_eq!(live.1.len(), 12);

    let mut progress = Vec::new();
    let rebuilt = runtime::rebuild(&store, &projector, |done, total| progress.push((done, total))).await.unwrap();
    assert_eq!(rebuilt, applied as u64);
    assert_eq!(progress.last(), Some(&(applied as u64, applied as u64)));
    assert_eq!(snapshot(&pool).await, live, "the rebuilt read model differs from the live one");
    assert_eq!(runtime::checkpoint(&pool, projector.name()).await.unwrap(), store.head_position().await.unwrap());

    // The live projector carries on from the swapped checkpoint.
    history(&store, "MORE").await;
    settle(&store).await;
    assert_eq!(runtime::catch_up(&store, &projector).await.unwrap(), applied);
    assert_eq!(snapshot(&pool).await.0.len(), 24);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_damaged_read_model_is_repaired_by_a_rebuild(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    history(&store, "EVSE").await;
    settle(&store).await;
    runtime::catch_up(&store, &TerminalsProjector).await.unwrap();
    let live = snapshot(&pool).await;
    sqlx::query("DELETE FROM rm_terminals.terminals WHERE id LIKE 'EVSE-1-%'").execute(&pool).await.unwrap();
    sqlx::query("UPDATE rm_terminals.terminals SET status = 'Charging'").execute(&pool).await.unwrap();
    runtime::rebuild(&store, &TerminalsProjector, |_, _| {}).await.unwrap();
    assert_eq!(snapshot(&pool).await, live);
}
