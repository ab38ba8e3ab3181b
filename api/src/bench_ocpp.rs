//! `chargeledger bench ocpp`: many concurrent charge points against the OCPP
//! gateway, driven from a separate process (`bench ocpp-load`), and the same
//! load against a minimal WebSocket echo server as the baseline.

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use commands::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use domain::{
    terminal::{OcppVersion, Terminal, TerminalEvent, TerminalRegistered},
    CompanyId, TerminalId,
};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue, Message};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Resident memory of this process, in KiB.
pub(crate) fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) fn raise_fd_limit() {
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("could not raise the open-file limit: {error}");
    }
}

/// What one load run measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LoadResult {
    /// Connections open during the measurement.
    pub connected: usize,
    /// CALLs sent during the measurement.
    pub sent: u64,
    /// Answers received.
    pub answered: u64,
    /// Errors (timeouts, closed connections).
    pub errors: u64,
    /// Median CALL→answer latency, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Measurement length, s.
    pub seconds: f64,
}

fn meter_values(id: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!([2, id, "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": now, "sampledValue": [{"value": "1234", "unit": "Wh"}]}]}])
        .to_string()
}

/// The load generator (run in its own process by `bench ocpp`).
pub async fn load(url: &str, connections: usize, rate: f64, seconds: u64) -> anyhow::Result<()> {
    raise_fd_limit();
    let connected = Arc::new(AtomicUsize::new(0));
    let (sent, answered, errors) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let start = CancellationToken::new();
    let stop = CancellationToken::new();
    let period = Duration::from_secs_f64(connections as f64 / rate);
    let mut tasks = Vec::with_capacity(connections);
    for i in 0..connections {
        if i % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(50)).await; // ramp up, 5,000 connections/s
        }
        let url = format!("{url}/BENCH-{i:05}");
        let (connected, sent, answered, errors, latencies, start, stop) = (
            connected.clone(),
            sent.clone(),
            answered.clone(),
            errors.clone(),
            latencies.clone(),
            start.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut request = url.into_client_request()?;
            request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("ocpp1.6"));
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
            let boot =
                json!([2, "boot", "BootNotification", {"chargePointVendor": "bench", "chargePointModel": "load"}])
                    .to_string();
            ws.send(Message::Text(boot.into())).await?;
            let _ = tokio::time::timeout(Duration::from_secs(60), ws.next()).await?;
            connected.fetch_add(1, Ordering::Relaxed);
            start.cancelled().await;
            let offset = period.mul_f64((i as f64 * 0.618_033_988_75) % 1.0);
            let mut next = tokio::time::Instant::now() + offset;
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep_until(next) => {}
                }
                next += period;
                n += 1;
                let id = format!("{i}-{n}");
                let sent_at = Instant::now();
                ws.send(Message::Text(meter_values(&id).into())).await?;
                sent.fetch_add(1, Ordering::Relaxed);
                // The gateway answers [3,id,{}]; the echo server sends the CALL back.
                let answer = tokio::time::timeout(Duration::from_secs(10), async {
                    while let Some(Ok(message)) = ws.next().await {
                        if let Message::Text(text) = message {
                            if text.contains(&format!("\"{id}\"")) {
                                return true;
                            }
                        }
                    }
                    false
                })
                .await;
                match answer {
                    Ok(true) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut l) = latencies.lock() {
                            l.push(sent_at.elapsed().as_micros() as u64);
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = ws.close(None).await;
            anyhow::Ok(())
        }));
    }
    // Wait for everyone who can connect.
    let deadline = Instant::now() + Duration::from_secs(120);
    while connected.load(Ordering::Relaxed) < connections && Instant::now() < deadline {
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("CONNECTED {}", connected.load(Ordering::Relaxed));
    start.cancel();
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.cancel();
    let elapsed = began.elapsed().as_secs_f64();
    println!("STOPPED");
    for t in tasks {
        if let Ok(Err(error)) = t.await {
            errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("load connection failed: {error}");
        }
    }
    let mut l = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_unstable();
    let pct = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0);
    let result = LoadResult {
        connected: connected.load(Ordering::Relaxed),
        sent: sent.load(Ordering::Relaxed),
        answered: answered.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        seconds: elapsed,
    };
    println!("RESULT {}", serde_json::to_string(&result)?);
    Ok(())
}

/// Starts the echo server on a free loopback port; cancel the token to stop it.
pub(crate) async fn start_echo() -> anyhow::Result<(std::net::SocketAddr, CancellationToken)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(echo(listener, stop.clone()));
    Ok((addr, stop))
}

/// A minimal WebSocket echo server: the baseline.
#[allow(clippy::result_large_err)] // tungstenite's handshake callback fixes the error type
async fn echo(listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
        };
        tokio::spawn(async move {
            let callback =
                |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                 mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                    if let Some(p) = req.headers().get("Sec-WebSocket-Protocol").cloned() {
                        resp.headers_mut().insert("Sec-WebSocket-Protocol", p);
                    }
                    Ok(resp)
                };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { return };
            while let Some(Ok(message)) = ws.next().await {
                if message.is_text() && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Runs the load generator in a child process against `url`; returns the
/// result and this process's RSS growth once every connection is open.
async fn drive(
    url: &str,
    connections: usize,
    rate: f64,
    seconds: u64,
    mut at_start: impl FnMut(),
) -> anyhow::Result<(LoadResult, u64)> {
    let before = rss_kib();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["bench", "ocpp-load", "--url", url, "--connections", &connections.to_string()])
        .args(["--rate", &rate.to_string(), "--seconds", &seconds.to_string()])
        .env("CHARGELEDGER_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut grown = 0;
    let mut result = None;
    while let Some(line) = lines.next_line().await? {
        if line.starts_with("CONNECTED") {
            grown = rss_kib().saturating_sub(before);
            at_start();
        } else if line.starts_with("STOPPED") {
            at_start();
        } else if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<LoadResult>(json)?);
        }
    }
    child.wait().await?;
    Ok((result.context("the load generator printed no result")?, grown))
}

/// Registers `n` terminals quickly (500 per transaction), all with the same
/// password hash if one is given (hashing is not what the benches measure).
pub(crate) async fn register(
    store: &EventStore,
    n: usize,
    company: Uuid,
    password_hash: Option<String>,
) -> anyhow::Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut tx = store.begin().await?;
        for i in chunk {
            let id = TerminalId::parse(&format!("BENCH-{i:05}"))?;
            let event = TerminalEvent::Registered(TerminalRegistered {
                terminal_id: id.clone(),
                company_id: CompanyId(company),
                station_id: 1,
                vendor: "bench".into(),
                model: "load".into(),
                ocpp_version: OcppVersion::V16,
                connectors: vec![],
                password_hash: password_hash.clone(),
                registered_at: chrono::Utc::now(),
            });
            let mut metadata = Metadata::system("bench");
            metadata.company_id = Some(company);
            let write = StreamWrite {
                stream_id: Terminal::stream_id(&id),
                expected: ExpectedVersion::NoStream,
                prev_hash: None,
                events: vec![NewEvent::from_domain(&event)],
                metadata,
            };
            tx.append(&write).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn frames(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type LIKE 'ocpp.frame%'")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

/// The whole benchmark; prints the table.
pub async fn ocpp(config: &crate::config::Config, connections: usize, rate: f64, seconds: u64) -> anyhow::Result<()> {
    raise_fd_limit();
    let pool = crate::bench::scratch_pool(&config.database_url, "chargeledger_bench_ocpp", 40).await?;
    let store = EventStore::new(pool.clone());
    println!("chargeledger bench ocpp: {connections} charge points, {rate} MeterValues/s in all, {seconds} s, load from a separate process");
    register(&store, connections, Uuid::new_v4(), None).await?;
    projections::runtime::catch_up(&store, &projections::terminals::TerminalsProjector).await?;

    // The gateway, in this process.
    let mut gateway_config = config.clone();
    gateway_config.ocpp = gateways::ocpp::OcppConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut state = crate::app::state(gateway_config, pool.clone())?;
    let (addr, listener, gateway) = crate::app::bind_gateway(&mut state).await?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(gateway.clone().serve(listener, shutdown.clone()));
    let marks = Arc::new(Mutex::new(Vec::new()));
    let (pool2, marks2) = (pool.clone(), marks.clone());
    let handle = tokio::runtime::Handle::current();
    let (gw, gw_rss) = drive(&format!("ws://{addr}/ocpp"), connections, rate, seconds, move || {
        let (pool, marks) = (pool2.clone(), marks2.clone());
        handle.spawn(async move {
            let n = frames(&pool).await;
            if let Ok(mut m) = marks.lock() {
                m.push((Instant::now(), n));
            }
        });
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let appended_per_s = marks
        .lock()
        .ok()
        .and_then(|m| match m.as_slice() {
            [(t0, n0), (t1, n1), ..] => Some((n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()),
            _ => None,
        })
        .unwrap_or(0.0);
    shutdown.cancel();
    let _ = server.await;

    // The baseline: a WebSocket echo server in this process.
    let (echo_addr, stop_echo) = start_echo().await?;
    let (base, base_rss) = drive(&format!("ws://{echo_addr}/ocpp"), connections, rate, seconds, || {}).await?;
    stop_echo.cancel();

    let per_conn = |kib: u64, n: usize| kib as f64 / n.max(1) as f64;
    let rate_of = |r: &LoadResult| r.answered as f64 / r.seconds.max(0.001);
    println!("{:<38} {:>14} {:>14} {:>8}", "", "gateway", "echo baseline", "ratio");
    let row =
        |name: &str, a: f64, b: f64| println!("{name:<38} {a:>14.1} {b:>14.1} {:>8.2}", a / b.max(f64::MIN_POSITIVE));
    row("connections held", gw.connected as f64, base.connected as f64);
    row("CALL→answer per second", rate_of(&gw), rate_of(&base));
    row("p50 CALL→answer latency (ms)", gw.p50_us as f64 / 1000.0, base.p50_us as f64 / 1000.0);
    row("p99 CALL→answer latency (ms)", gw.p99_us as f64 / 1000.0, base.p99_us as f64 / 1000.0);
    row("server RSS per connection (KiB)", per_conn(gw_rss, gw.connected), per_conn(base_rss, base.connected));
    println!("{:<38} {:>14.1}", "frames durably appended per second", appended_per_s);
    println!("{:<38} {:>14} {:>14}", "errors (timeouts, failed connections)", gw.errors, base.errors);
    Ok(())
}
