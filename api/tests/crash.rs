//! `kill -9` of `serve` under load from 200 password-protected OCPP 1.6
//! chargers (issue 21): every call the gateway acknowledged has its frame and
//! its effect in the log exactly once, meter registers stay monotonic, the log
//! verifies, and every charger is answered again by the restarted process.
//!
//! The chargers are raw WebSocket clients (the `ocpp` package is too heavy for
//! 200 at once): they behave like real firmware — a call unanswered when the
//! connection dropped is sent again, with the same message id, after the
//! reconnect.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use base64::Engine;
use chargeledger_api::auth::{self, Role};
use futures::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::*;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[path = "crash/retry.rs"]
mod retry;

const CHARGERS: usize = 200;
const SECRET: &str = "crash-test-jwt-secret-0123456789abcdef-0123456789";
const DATA_KEY: &str = "crash-test-data-key-0123456789abcdef-0123456789ab";

struct Server {
    child: Child,
}

impl Server {
    fn spawn(db_url: &str, http: u16, ocpp: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_chargeledger"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHARGELEDGER_DATABASE_URL", db_url)
            .env("CHARGELEDGER_HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("CHARGELEDGER_OCPP_ADDR", format!("127.0.0.1:{ocpp}"))
            .env("CHARGELEDGER_JWT_SECRET", SECRET)
            .env("CHARGELEDGER_SECRETS_KEY", DATA_KEY)
            .env("CHARGELEDGER_LOG", "error")
            // This test is about crashes, not abuse limits: the operator registers
            // 200 chargers with one token faster than the default budget allows.
            .env("CHARGELEDGER_RATE_LIMIT_PER_MIN", "100000")
            .env("CHARGELEDGER_RATE_LIMIT_BURST", "10000")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self { child }
    }

    /// SIGKILL: no shutdown hook runs, whatever was in flight is cut.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_ready(client: &reqwest::Client, http: u16) {
    for _ in 0..600 {
        let ready = client.get(format!("http://127.0.0.1:{http}/health/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not become ready");
}

/// What one charger saw acknowledged.
#[derive(Default)]
struct Seen {
    /// (message id, action) of every CALL answered with a CALLRESULT.
    acked: Vec<(String, String)>,
    /// CALLERRORs other than "retry" received (there must be none).
    errors: Vec<String>,
    /// Calls refused with InternalError ("could not record; retry") and sent again.
    retried: u64,
    /// The last server generation that answered this charger's BootNotification.
    booted_in: u64,
    /// MeterValues acknowledged per generation.
    meter_acks: [u64; 2],
    transaction_id: Option<i64>,
}

struct Shared {
    generation: AtomicU64,
    stop: CancellationToken,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends a CALL and waits for its answer (ignoring anything else the server says).
async fn call(ws: &mut Ws, id: &str, frame: &str) -> Option<Value> {
    ws.send(Message::Text(frame.to_owned().into())).await.ok()?;
    let answer = async {
        while let Some(message) = ws.next().await {
            let Ok(Message::Text(text)) = message else {
                if message.is_err() {
                    return None;
                }
                continue;
            };
            let value: Value = serde_json::from_str(&text).ok()?;
            if value[1] == id && matches!(value[0].as_i64(), Some(3 | 4)) {
                return Some(value);
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(15), answer).await.ok().flatten()
}

async fn charger(i: usize, base: String, shared: Arc<Shared>) -> Seen {
    let id = format!("CRASH-{i:03}");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{}", support::charger::PASSWORD));
    let mut seen = Seen::default();
    let mut energy = 0i64;
    let mut n = 0u64;
    // A CALL sent but not answered: sent again, same id, after reconnecting.
    let mut pending: Option<(String, String, String)> = None;
    'connect: while !shared.stop.is_cancelled() {
        let mut request = format!("{base}/{id}").into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("ocpp1.6"));
        request.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Basic {auth}")).unwrap());
        let Ok(Ok((mut ws, _))) =
            tokio::time::timeout(Duration::from_secs(20), tokio_tungstenite::connect_async(request)).await
        else {
            tokio::time::sleep(Duration::from_millis(100 + (i as u64 % 10) * 30)).await;
            continue;
        };
        let generation = shared.generation.load(Ordering::SeqCst);
        n += 1;
        let boot_id = format!("boot-{i}-{n}");
        let boot = json!([2, boot_id, "BootNotification", {"chargePointVendor": "crash", "chargePointModel": "test"}]);
        match call(&mut ws, &boot_id, &boot.to_string()).await {
            Some(answer) if answer[0] == 3 => seen.booted_in = generation,
            _ => continue 'connect,
        }
        loop {
            if shared.stop.is_cancelled() {
                let _ = ws.close(None).await;
                break 'connect;
            }
            let (msg_id, action, frame) = match pending.take() {
                Some(p) => p,
                None => {
                    n += 1;
                    let msg_id = format!("m-{i}-{n}");
                    match seen.transaction_id {
                        None => {
                            let frame = json!([2, msg_id, "StartTransaction",
                                {"connectorId": 1, "idTag": format!("TAG-{i}"), "meterStart": 0, "timestamp": now()}]);
                            (msg_id, "StartTransaction".to_owned(), frame.to_string())
                        }
                        Some(tx) => {
                            energy += 7;
                            let frame = json!([2, msg_id, "MeterValues", {"connectorId": 1, "transactionId": tx,
                                "meterValue": [{"timestamp": now(), "sampledValue": [{"value": energy.to_string(),
                                "unit": "Wh", "measurand": "Energy.Active.Import.Register"}]}]}]);
                            (msg_id, "MeterValues".to_owned(), frame.to_string())
                        }
                    }
                }
            };
            match call(&mut ws, &msg_id, &frame).await {
                Some(answer) if answer[0] == 3 => {
                    if action == "StartTransaction" {
                        seen.transaction_id = answer[2]["transactionId"].as_i64();
                    } else {
                        let g = shared.generation.load(Ordering::SeqCst).min(1) as usize;
                        seen.meter_acks[g] += 1;
                    }
                    seen.acked.push((msg_id, action));
                }
                // "Could not record this message; retry": not acknowledged, so
                // firmware sends it again (the database may be saturated).
                Some(answer) if answer[2] == "InternalError" => {
                    seen.retried += 1;
                    pending = Some((msg_id, action, frame));
                }
                Some(answer) => seen.errors.push(answer.to_string()),
                None => {
                    pending = Some((msg_id, action, frame));
                    continue 'connect;
                }
            }
            let pause = Duration::from_millis(500 + ((i as u64 * 37 + n * 11) % 500));
            tokio::select! {
                _ = shared.stop.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
    seen
}

/// Per charger, from the log: (boots, meter values recorded).
async fn progress(pool: &PgPool) -> Vec<(i64, i64)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT stream_id, count(*) FILTER (WHERE event_type = 'charger.booted'), \
                count(*) FILTER (WHERE event_type = 'charger.meter_values_recorded') \
         FROM events WHERE stream_id LIKE 'charger-CRASH-%' GROUP BY stream_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = vec![(0, 0); CHARGERS];
    for (stream, boots, meters) in rows {
        if let Some(i) = stream.strip_prefix("charger-CRASH-").and_then(|n| n.parse::<usize>().ok()) {
            out[i] = (boots, meters);
        }
    }
    out
}

/// Waits (bounded) until `ok` holds for every charger's progress.
async fn until(pool: &PgPool, what: &str, ok: impl Fn(usize, (i64, i64)) -> bool) -> Vec<(i64, i64)> {
    for _ in 0..900 {
        let now = progress(pool).await;
        if now.iter().enumerate().all(|(i, &p)| ok(i, p)) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("not every charger got there: {what}");
}

#[sqlx::test(migrations = "../migrations")]
async fn kill_9_under_load_loses_no_acknowledged_call(pool: PgPool) {
    let db_url = test_config(&pool).database_url;
    let (http, ocpp) = (free_port(), free_port());
    let client = reqwest::Client::new();
    let mut server = Server::spawn(&db_url, http, ocpp);
    wait_ready(&client, http).await;

    let mut config = test_config(&pool);
    config.jwt_secret = SecretString::from(SECRET);
    let company = Uuid::new_v4();
    let token =
        auth::mint_token(&config, "crash-operator", company, Role::Operator, chrono::Duration::hours(1)).unwrap();
    let registrations = futures::stream::iter(0..CHARGERS).map(|i| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let body = terminal(&format!("CRASH-{i:03}"), 40 + i as i64);
            let response = client
                .post(format!("http://127.0.0.1:{http}/v1/terminals"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
        }
    });
    registrations.buffer_unordered(4).collect::<Vec<()>>().await;

    // The load: every charger boots, starts a transaction and sends meter values.
    let shared = Arc::new(Shared { generation: AtomicU64::new(0), stop: CancellationToken::new() });
    let base = format!("ws://127.0.0.1:{ocpp}/ocpp");
    let tasks: Vec<_> = (0..CHARGERS)
        .map(|i| {
            let (base, shared) = (base.clone(), shared.clone());
            tokio::spawn(charger(i, base, shared))
        })
        .collect();
    let at_kill =
        until(&pool, "three meter values before the kill", |_, (boots, meters)| boots >= 1 && meters >= 3).await;

    server.kill_9();
    shared.generation.store(1, Ordering::SeqCst);
    let mut server = Server::spawn(&db_url, http, ocpp);
    wait_ready(&client, http).await;
    until(&pool, "booted again and three more meter values after the restart", |i, (boots, meters)| {
        boots > at_kill[i].0 && meters >= at_kill[i].1 + 3
    })
    .await;
    shared.stop.cancel();
    let mut seen = Vec::with_capacity(CHARGERS);
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    server.kill_9();

    for (i, s) in seen.iter().enumerate() {
        let id = format!("CRASH-{i:03}");
        assert!(s.errors.is_empty(), "{id} got CALLERRORs: {:?}", s.errors);
        assert_eq!(s.booted_in, 1, "{id} was answered by the restarted process");
        assert!(s.meter_acks[1] >= 1, "{id} charged on after the restart");
        // Every frame received, by message id: how many times, and the effects caused.
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT f.payload->>'messageId', count(DISTINCT f.event_id), \
                    count(e.event_id) FILTER (WHERE e.event_type IN ('charger.meter_values_recorded', 'charger.transaction_started')) \
             FROM events f LEFT JOIN events e ON e.stream_id = $2 AND e.metadata->>'causationId' = f.event_id::text \
             WHERE f.stream_id = $1 AND f.event_type = 'ocpp.frame_received' AND f.payload->'rejection' = 'null'::jsonb \
               AND f.payload->>'messageId' LIKE 'm-%' \
             GROUP BY 1",
        )
        .bind(format!("ocpp-{id}"))
        .bind(format!("charger-{id}"))
        .fetch_all(&pool)
        .await
        .unwrap();
        let logged: HashMap<String, (i64, i64)> = rows.into_iter().map(|(m, f, e)| (m, (f, e))).collect();
        for (msg_id, action) in &s.acked {
            let Some(&(_frames, effects)) = logged.get(msg_id) else {
                panic!("{id}: acknowledged {action} {msg_id} is not in the log");
            };
            assert_eq!(effects, 1, "{id}: acknowledged {action} {msg_id} has {effects} effects");
        }
        for (msg_id, (_, effects)) in &logged {
            assert!(*effects <= 1, "{id}: {msg_id} took effect {effects} times");
        }
        let energies: Vec<i64> = sqlx::query_scalar(
            "SELECT (jsonb_path_query_array(payload, '$.samples[*].energyWh') ->> -1)::bigint FROM events \
             WHERE stream_id = $1 AND event_type = 'charger.meter_values_recorded' ORDER BY stream_version",
        )
        .bind(format!("charger-{id}"))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(energies.windows(2).all(|w| w[0] <= w[1]), "{id}: meter register went backwards: {energies:?}");
        let acked_meters = s.acked.iter().filter(|(_, a)| a == "MeterValues").count();
        assert!(
            energies.len() >= acked_meters,
            "{id}: {} meter events for {acked_meters} acknowledged",
            energies.len()
        );
    }

    let store = commands::EventStore::new(pool.clone());
    assert_log_verifies(&store).await;
}
