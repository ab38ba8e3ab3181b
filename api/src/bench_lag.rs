//! `chargeledger bench lag`: how long a committed event waits before a log
//! reader can read it while projector-style read-model transactions run,
//! declared read-only for the log (`projections::runtime::begin`, ADR 0002)
//! against plain transactions (the behaviour before issue 11), in one run on
//! one database.
//!
//! Each "projector" loops: a transaction that takes an xid (a read-model
//! write), holds it for `hold` (the time a batch takes to apply), commits. A
//! writer appends one event every 5 ms; a reader tails `read_all` and records,
//! per event, the time from issuing the append to the read (so the append's
//! own latency, about a millisecond, is included).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use commands::{EventStore, ExpectedVersion, Metadata, NewEvent};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Reader lag percentiles in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Lag {
    /// Median lag (50th percentile).
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Events measured.
    pub events: usize,
}

async fn projector(pool: PgPool, declared: bool, hold: Duration, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let mut tx = if declared { projections::runtime::begin(&pool).await? } else { pool.begin().await? };
        sqlx::query("INSERT INTO bench_read_model (id, at) VALUES ($1, now())")
            .bind(Uuid::new_v4())
            .execute(&mut *tx)
            .await?;
        tokio::time::sleep(hold).await;
        tx.commit().await?;
    }
    Ok(())
}

async fn measure(
    pool: &PgPool,
    projectors: usize,
    declared: bool,
    hold: Duration,
    seconds: u64,
) -> anyhow::Result<Lag> {
    let store = EventStore::new(pool.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..projectors {
        tasks.push(tokio::spawn(projector(pool.clone(), declared, hold, stop.clone())));
    }
    let appended: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let (writer_store, writer_map, writer_stop) = (store.clone(), appended.clone(), stop.clone());
    let stream = format!("lag-{}", Uuid::new_v4().simple());
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        let mut first = true;
        while !writer_stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let event = NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "bench.lag".into(),
                schema_version: 1,
                payload: json!({}),
            };
            let expected = if first { ExpectedVersion::NoStream } else { ExpectedVersion::Any };
            first = false;
            let id = event.event_id;
            let write = commands::StreamWrite {
                stream_id: stream.clone(),
                expected,
                prev_hash: None,
                events: vec![event],
                metadata: Metadata::system("bench"),
            };
            writer_map.lock().await.insert(id, Instant::now());
            writer_store.append(&[write], None).await?;
        }
        anyhow::Ok(())
    });
    let mut cursor = store.head_position().await?;
    let mut lags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let batch = store.read_all(cursor, 1000).await?;
        let now = Instant::now();
        if let Some(last) = batch.last() {
            cursor = last.position;
        }
        let map = appended.lock().await;
        for e in &batch {
            if let Some(at) = map.get(&e.event_id) {
                lags.push(now.saturating_duration_since(*at).as_secs_f64() * 1000.0);
            }
        }
        drop(map);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await??;
    for t in tasks {
        t.await??;
    }
    lags.sort_by(f64::total_cmp);
    let at = |q: f64| lags.get(((lags.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    Ok(Lag { p50: at(0.5), p99: at(0.99), events: lags.len() })
}

/// Sweeps the number of projectors and prints reader lag, declared against plain.
pub async fn lag(database_url: &str, seconds: u64, hold_ms: u64) -> anyhow::Result<Vec<(usize, Lag, Lag)>> {
    let pool = crate::bench::scratch_pool(database_url, "chargeledger_bench_lag", 40).await?;
    sqlx::query("CREATE TABLE bench_read_model (id uuid PRIMARY KEY, at timestamptz NOT NULL)").execute(&pool).await?;
    let hold = Duration::from_millis(hold_ms);
    println!(
        "chargeledger bench lag: {seconds} s per measurement; each projector holds a read-model transaction {hold_ms} ms; \
         one append every 5 ms; lag = append issued -> read_all returned it"
    );
    println!(
        "{:<11} {:>16} {:>16} {:>14} {:>14} {:>10}",
        "projectors", "declared p50 ms", "declared p99 ms", "plain p50 ms", "plain p99 ms", "p99 ratio"
    );
    let mut out = Vec::new();
    for projectors in [0usize, 1, 2, 4, 8, 16] {
        let declared = measure(&pool, projectors, true, hold, seconds).await?;
        let plain = measure(&pool, projectors, false, hold, seconds).await?;
        println!(
            "{projectors:<11} {:>16.2} {:>16.2} {:>14.2} {:>14.2} {:>10.2}",
            declared.p50,
            declared.p99,
            plain.p50,
            plain.p99,
            plain.p99 / declared.p99
        );
        out.push((projectors, declared, plain));
    }
    pool.close().await;
    Ok(out)
}
