//! `chargeledger bench ocpp --passwords`: a reconnect storm of N chargers
//! with passwords (security profile 1) against the gateway, the morning
//! after a deploy: every charger connects at once, each handshake verifies
//! an Argon2id password. Prints the connect rate, the retries the gateway's
//! limits caused, and the gateway's peak RSS, for a cold process (nothing
//! cached) and a warm reconnect (verifications cached, ADR 0017), against a
//! WebSocket echo server without authentication as the baseline.

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use base64::Engine;
use commands::EventStore;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bench_ocpp::{raise_fd_limit, register, rss_kib, start_echo};

/// The password every storm charger uses.
const PASSWORD: &str = "bench-storm-password-16+";

/// What one storm measured (printed by the load process as JSON).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StormResult {
    /// Chargers whose handshake succeeded.
    pub connected: usize,
    /// Handshakes refused or failed, then retried.
    pub retries: u64,
    /// From the first attempt to the last charger connected, s.
    pub seconds: f64,
}

/// Peak resident memory of this process since the last reset, in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux: `5` in clear_refs).
fn reset_peak() {
    if let Err(error) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("could not reset the peak RSS counter: {error}");
    }
}

/// The load process: opens `connections` authenticated WebSockets at once
/// (retrying each refused or failed handshake after a short pause, as
/// firmware does), holds them until all are open or five minutes passed,
/// prints the result and closes them.
pub async fn load(url: &str, connections: usize, password: &str) -> anyhow::Result<()> {
    raise_fd_limit();
    let connected = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let hold = CancellationToken::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let began = Instant::now();
    let last = Arc::new(std::sync::Mutex::new(began));
    let mut tasks = Vec::with_capacity(connections);
    for i in 0..connections {
        if i % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let id = format!("BENCH-{i:05}");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{password}"));
        let url = format!("{url}/{id}");
        let (connected, retries, hold, last) = (connected.clone(), retries.clone(), hold.clone(), last.clone());
        tasks.push(tokio::spawn(async move {
            let mut attempt = 0u64;
            while Instant::now() < deadline {
                let mut request = url.as_str().into_client_request()?;
                request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("ocpp1.6"));
                request.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Basic {auth}"))?);
                let opened =
                    tokio::time::timeout(Duration::from_secs(30), tokio_tungstenite::connect_async(request)).await;
                if let Ok(Ok((mut ws, _))) = opened {
                    connected.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut l) = last.lock() {
                        *l = Instant::now();
                    }
                    hold.cancelled().await;
                    let _ = ws.close(None).await;
                    return anyhow::Ok(());
                }
                retries.fetch_add(1, Ordering::Relaxed);
                attempt += 1;
                // Firmware backs off; spread the retries so they do not come back in step.
                let pause = 200 + (i as u64 * 7919 + attempt * 104_729) % 800;
                tokio::time::sleep(Duration::from_millis(pause.min(5_000))).await;
            }
            anyhow::Ok(())
        }));
    }
    while connected.load(Ordering::Relaxed) < connections && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = last.lock().map(|l| l.duration_since(began).as_secs_f64()).unwrap_or_default();
    let result =
        StormResult { connected: connected.load(Ordering::Relaxed), retries: retries.load(Ordering::Relaxed), seconds };
    println!("RESULT {}", serde_json::to_string(&result)?);
    hold.cancel();
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

/// Runs one storm from a child process; returns its result and this
/// process's peak RSS growth over `idle_kib` during it.
async fn storm(url: &str, connections: usize, password: &str, idle_kib: u64) -> anyhow::Result<(StormResult, u64)> {
    reset_peak();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["bench", "ocpp-storm-load", "--url", url, "--connections", &connections.to_string()])
        .args(["--password", password])
        .env("CHARGELEDGER_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut result = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<StormResult>(json)?);
        }
    }
    child.wait().await?;
    let peak = peak_kib().saturating_sub(idle_kib);
    Ok((result.context("the storm load printed no result")?, peak))
}

/// The whole storm benchmark; prints the table.
pub async fn passwords(config: &crate::config::Config, connections: usize) -> anyhow::Result<()> {
    raise_fd_limit();
    let pool = crate::bench::scratch_pool(&config.database_url, "chargeledger_bench_storm", 40).await?;
    let store = EventStore::new(pool.clone());
    println!(
        "chargeledger bench ocpp --passwords: reconnect storm of {connections} chargers with passwords \
         (Argon2id), load from a separate process"
    );
    let hash =
        commands::terminals::hash_password(PASSWORD.into(), "password").await.map_err(|e| anyhow::anyhow!("{e}"))?;
    register(&store, connections, Uuid::new_v4(), Some(hash)).await?;
    projections::runtime::catch_up(&store, &projections::terminals::TerminalsProjector).await?;

    let mut gateway_config = config.clone();
    let limits = gateway_config.ocpp.limits.clone();
    gateway_config.ocpp = gateways::ocpp::OcppConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    gateway_config.ocpp.limits = limits;
    let mut state = crate::app::state(gateway_config, pool.clone())?;
    let (addr, listener, gateway) = crate::app::bind_gateway(&mut state).await?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(gateway.clone().serve(listener, shutdown.clone()));
    let url = format!("ws://{addr}/ocpp");
    let idle = rss_kib();
    let (cold, cold_peak) = storm(&url, connections, PASSWORD, idle).await?;
    tokio::time::sleep(Duration::from_secs(2)).await; // disconnections recorded
    let (warm, warm_peak) = storm(&url, connections, PASSWORD, idle).await?;
    let after = rss_kib();
    shutdown.cancel();
    let _ = server.await;

    let (echo_addr, stop_echo) = start_echo().await?;
    let echo_idle = rss_kib();
    let (base, base_peak) = storm(&format!("ws://{echo_addr}/ocpp"), connections, PASSWORD, echo_idle).await?;
    stop_echo.cancel();

    let rate = |r: &StormResult| r.connected as f64 / r.seconds.max(0.001);
    println!("{:<44} {:>12} {:>12} {:>14}", "", "cold start", "warm (cache)", "echo baseline");
    println!("{:<44} {:>12} {:>12} {:>14}", "chargers connected", cold.connected, warm.connected, base.connected);
    println!(
        "{:<44} {:>12.1} {:>12.1} {:>14.1}",
        "seconds until the last one connected", cold.seconds, warm.seconds, base.seconds
    );
    println!("{:<44} {:>12.0} {:>12.0} {:>14.0}", "connections per second", rate(&cold), rate(&warm), rate(&base));
    println!(
        "{:<44} {:>12.3} {:>12.3} {:>14}",
        "ratio to the echo baseline",
        rate(&cold) / rate(&base).max(f64::MIN_POSITIVE),
        rate(&warm) / rate(&base).max(f64::MIN_POSITIVE),
        "1.000"
    );
    println!(
        "{:<44} {:>12} {:>12} {:>14}",
        "handshakes refused or failed, then retried", cold.retries, warm.retries, base.retries
    );
    println!(
        "{:<44} {:>12.1} {:>12.1} {:>14.1}",
        "peak RSS growth during the storm (MiB)",
        cold_peak as f64 / 1024.0,
        warm_peak as f64 / 1024.0,
        base_peak as f64 / 1024.0
    );
    println!("{:<44} {:>12.1}", "gateway RSS before / after both storms (MiB)", idle as f64 / 1024.0);
    println!("{:<44} {:>12.1}", "", after as f64 / 1024.0);
    Ok(())
}
