//! The reconnect storm against the real binary (`chargeledger serve` in its own
//! process, so its memory is its own): 1,000 chargers with passwords connect at
//! once (every password checked by Argon2), all disconnect, and all reconnect at
//! once (the morning after a deploy, and a flapping network). Peak RSS must stay
//! under [`BOUND_MIB`] and every charger must end connected.
//!
//! `CHARGELEDGER_TEST_STORM=<n>` changes the number of chargers and
//! `CHARGELEDGER_TEST_SERVE_BIN=<path>` the binary (to measure another build).

use std::process::Stdio;

use chargeledger_api::auth;
use commands::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use domain::{terminal::Terminal, TerminalId};
use tokio::{process::Command, task::JoinSet};

use super::*;

/// Peak resident memory allowed to the gateway process during the storm.
/// Measured (debug build, 2 shared cores): idle 68 MiB, 126 MiB after the
/// first storm, 129 MiB after the reconnect storm. The code before ADR 0017,
/// with `CHARGELEDGER_TEST_STORM=200`: 3,866 MiB, then 7,458 MiB.
pub const BOUND_MIB: u64 = 400;

/// VmHWM (peak) and VmRSS of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn connected(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM rm_ocpp.chargers WHERE connected AND id LIKE 'STORM-%'")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

/// Connects, retrying refusals (caps, timeouts) as a charger would; returns the attempts.
async fn connect_retrying(addr: SocketAddr, id: String) -> (Ws, u32) {
    for attempt in 1..=600u32 {
        if let Ok(Ok(ws)) = tokio::time::timeout(Duration::from_secs(60), connect(addr, &id, Some(PASSWORD))).await {
            return (ws, attempt);
        }
        tokio::time::sleep(Duration::from_millis(100 + u64::from(attempt % 7) * 30)).await;
    }
    panic!("{id} never connected");
}

/// Each charger's socket, read (answering the gateway's pings) until aborted.
async fn storm(addr: SocketAddr, ids: &[String]) -> (Vec<tokio::task::JoinHandle<()>>, u32) {
    let mut tasks = JoinSet::new();
    for id in ids {
        tasks.spawn(connect_retrying(addr, id.clone()));
    }
    let mut sockets = Vec::new();
    let mut retries = 0;
    while let Some(done) = tasks.join_next().await {
        let (mut ws, attempts) = done.unwrap();
        sockets.push(tokio::spawn(async move { while ws.next().await.is_some() {} }));
        retries += attempts - 1;
    }
    (sockets, retries)
}

/// Copies the registration of `first` (made through the API, so its shape is
/// whatever the API writes) to the other ids, straight into the log.
async fn register_copies(pool: &PgPool, first: &str, ids: &[String]) {
    let (payload, company): (Value, Uuid) = sqlx::query_as(
        "SELECT payload, (metadata->>'companyId')::uuid FROM events WHERE stream_id = $1 AND event_type = 'terminal.registered'",
    )
    .bind(format!("terminal-{first}"))
    .fetch_one(pool)
    .await
    .unwrap();
    let store = EventStore::new(pool.clone());
    for chunk in ids.chunks(250) {
        let mut tx = store.begin().await.unwrap();
        for id in chunk {
            let mut payload = payload.clone();
            payload["terminalId"] = json!(id);
            let mut metadata = Metadata::system("test");
            metadata.company_id = Some(company);
            let write = StreamWrite {
                stream_id: Terminal::stream_id(&TerminalId::parse(id).unwrap()),
                expected: ExpectedVersion::NoStream,
                prev_hash: None,
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "terminal.registered".into(),
                    schema_version: 1,
                    payload,
                }],
                metadata,
            };
            tx.append(&write).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reconnect_storm_of_1000_password_chargers_stays_under_the_memory_bound(pool: PgPool) {
    let n: usize = std::env::var("CHARGELEDGER_TEST_STORM").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let binary =
        std::env::var("CHARGELEDGER_TEST_SERVE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_chargeledger").into());
    let mut config = test_config(&pool);
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    config.jwt_secret = secrecy::SecretString::from(secret.clone());
    let (http, ocpp) = (free_port(), free_port());
    let mut child = Command::new(binary)
        .arg("serve")
        .env("CHARGELEDGER_DATABASE_URL", &config.database_url)
        .env("CHARGELEDGER_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("CHARGELEDGER_OCPP_ADDR", format!("127.0.0.1:{ocpp}"))
        .env("CHARGELEDGER_JWT_SECRET", &secret)
        .env("CHARGELEDGER_SECRETS_KEY", format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()))
        .env("CHARGELEDGER_LOG", "error")
        .env_remove("CHARGELEDGER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{http}/health/ready");
    until("the server answers", async || client.get(&health).send().await.is_ok_and(|r| r.status() == 200)).await;
    let token =
        auth::mint_token(&config, "tester", Uuid::new_v4(), Role::Operator, chrono::Duration::hours(1)).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("STORM-{i:04}")).collect();
    let response = client
        .post(format!("http://127.0.0.1:{http}/v1/terminals"))
        .bearer_auth(&token)
        .json(&terminal(&ids[0], 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    register_copies(&pool, &ids[0], &ids[1..]).await;
    until("the directory knows every charger", async || {
        let known: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_terminals.terminals WHERE id LIKE 'STORM-%'")
            .fetch_one(&pool)
            .await
            .unwrap();
        known == n as i64
    })
    .await;
    let (_, idle_kib) = memory_kib(pid);
    let addr: SocketAddr = format!("127.0.0.1:{ocpp}").parse().unwrap();

    let (sockets, cold_retries) = storm(addr, &ids).await;
    until("every charger is connected", async || connected(&pool).await == n as i64).await;
    let (cold_peak_kib, cold_rss_kib) = memory_kib(pid);
    sockets.iter().for_each(|s| s.abort());
    until("every charger is disconnected", async || connected(&pool).await == 0).await;
    let (sockets, warm_retries) = storm(addr, &ids).await;
    until("every charger is connected again", async || connected(&pool).await == n as i64).await;
    let (peak_kib, rss_kib) = memory_kib(pid);
    eprintln!(
        "storm of {n}: idle {} MiB; first storm peak {} MiB (rss {} MiB, {cold_retries} retries); \
         reconnect storm peak {} MiB (rss {} MiB, {warm_retries} retries)",
        idle_kib / 1024,
        cold_peak_kib / 1024,
        cold_rss_kib / 1024,
        peak_kib / 1024,
        rss_kib / 1024
    );
    assert_eq!(sockets.len(), n);
    assert!(peak_kib / 1024 < BOUND_MIB, "peak RSS {} MiB over the bound of {BOUND_MIB} MiB", peak_kib / 1024);
    child.kill().await.unwrap();
}
