//! The charger directory (the session service's port) against a real
//! Postgres: what a start is told of a terminal, its connector and its
//! connection, scoped to the company.
#![allow(clippy::unwrap_used)]

use chargeledger_projections::charger_directory::ReadModelChargerDirectory;
use commands::sessions::{ChargerDirectory, ChargerSnapshot};
use domain::{terminal::OcppVersion, CompanyId, TerminalId};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

async fn terminal(pool: &PgPool, company: Uuid, id: &str, connectors: &[u32]) {
    let connectors: Vec<_> = connectors.iter().map(|c| json!({"id": c, "type": "Type2", "maxPowerW": 22000})).collect();
    sqlx::query(
        "INSERT INTO rm_terminals.terminals (id, company_id, station_id, vendor, model, ocpp_version, connectors, \
           status, registered_at, updated_at, version, security_profile) \
         VALUES ($1, $2, 10, 'ABB', 'Terra', '2.0.1', $3, 'ACTIVE', now(), now(), 1, 1)",
    )
    .bind(id)
    .bind(company)
    .bind(json!(connectors))
    .execute(pool)
    .await
    .unwrap();
}

async fn connected(pool: &PgPool, company: Uuid, id: &str, connected: bool, protocol: &str) {
    sqlx::query("INSERT INTO rm_ocpp.chargers (id, company_id, connected, protocol) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(company)
        .bind(connected)
        .bind(protocol)
        .execute(pool)
        .await
        .unwrap();
}

async fn status(pool: &PgPool, company: Uuid, id: &str, evse: i64, connector: i64, status: &str) {
    sqlx::query(
        "INSERT INTO rm_ocpp.connectors (charger_id, evse_id, connector_id, company_id, status, updated_at) \
         VALUES ($1, $2, $3, $4, $5, now())",
    )
    .bind(id)
    .bind(evse)
    .bind(connector)
    .bind(company)
    .bind(status)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_start_is_told_the_terminal_its_connector_and_its_connection(pool: PgPool) {
    let directory = ReadModelChargerDirectory::new(pool.clone());
    let (company, other) = (Uuid::new_v4(), Uuid::new_v4());
    let id = TerminalId::parse("EVSE-D1").unwrap();
    let ask = |company: Uuid, connector: i64| {
        let (directory, id) = (directory.clone(), id.clone());
        async move { directory.charger(CompanyId(company), &id, connector).await.unwrap() }
    };
    // Given a registered terminal that never connected,
    terminal(&pool, company, "EVSE-D1", &[2, 1]).await;
    // then its company is told its connectors, and nothing of a connection;
    let never =
        ChargerSnapshot { registered_connectors: vec![2, 1], connector_status: None, connected: false, protocol: None };
    assert_eq!(ask(company, 1).await, Some(never));
    // and another company is told there is no such terminal.
    assert_eq!(ask(other, 1).await, None);

    // Given it connected with 2.0.1 and its connector 1 reported on two EVSEs,
    connected(&pool, company, "EVSE-D1", true, "2.0.1").await;
    status(&pool, company, "EVSE-D1", 2, 1, "Occupied").await;
    status(&pool, company, "EVSE-D1", 1, 1, "Available").await;
    // then the first EVSE's status is the connector's, with the connection and protocol.
    let now = ask(company, 1).await.unwrap();
    assert_eq!(
        (now.connector_status.as_deref(), now.connected, now.protocol),
        (Some("Available"), true, Some(OcppVersion::V201))
    );
    assert_eq!(ask(company, 2).await.unwrap().connector_status, None, "connector 2 has not reported");
}
