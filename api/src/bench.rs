//! `chargeledger bench append`: event-log append throughput against a baseline
//! of plain `INSERT`s of identical rows into a table of the same shape, measured
//! in the same run on the same database.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use commands::{hashing::ZERO_HASH, EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use serde_json::json;
use sqlx::{postgres::PgPoolOptions, PgPool};
use uuid::Uuid;

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured.
    pub scenario: String,
    /// Events per second through the event store.
    pub store_eps: f64,
    /// Events per second of plain inserts.
    pub baseline_eps: f64,
}

fn payload() -> serde_json::Value {
    json!({"terminalId": "EVSE-001", "kind": "heartbeat", "severity": "info", "code": null, "message": null,
           "occurredAt": "2026-11-21T12:00:00Z", "reportedAt": "2026-11-21T12:00:00Z"})
}

fn event() -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "terminal.health_reported".into(),
        schema_version: 1,
        payload: payload(),
    }
}

/// Creates (fresh) a scratch database `name` next to the configured one, migrated.
pub async fn scratch_pool(database_url: &str, name: &str, connections: u32) -> anyhow::Result<PgPool> {
    let (base, _) = database_url.rsplit_once('/').context("database URL has no database name")?;
    let admin = PgPoolOptions::new().max_connections(1).connect(&format!("{base}/postgres")).await?;
    // The name is ours, not input.
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
    let pool = PgPoolOptions::new().max_connections(connections).connect(&format!("{base}/{name}")).await?;
    crate::app::migrate(&pool).await?;
    Ok(pool)
}

/// The append bench's database, with the baseline table.
async fn bench_pool(database_url: &str, connections: u32) -> anyhow::Result<PgPool> {
    let pool = scratch_pool(database_url, "chargeledger_bench", connections).await?;
    // The baseline table: same columns and indexes as `events`, no triggers,
    // positions from a sequence.
    sqlx::query("CREATE TABLE baseline (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE SEQUENCE baseline_position").execute(&pool).await?;
    Ok(pool)
}

/// Runs `work(writer, iteration)` on `writers` tasks for `duration`; returns events per second.
async fn run<F, Fut>(writers: usize, duration: Duration, events_per_call: u64, work: F) -> anyhow::Result<f64>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..writers {
        let (work, stop, done) = (work.clone(), stop.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                work(w, i).await?;
                i += 1;
                done.fetch_add(events_per_call, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// A writer's stream: last version and hash.
type Chain = tokio::sync::Mutex<(i64, [u8; 32])>;

async fn store_scenario(store: &EventStore, writers: usize, batch: usize, duration: Duration) -> anyhow::Result<f64> {
    let run_id = Uuid::new_v4();
    // Each writer appends to its own stream with optimistic concurrency, carrying
    // the previous hash as a command handler does after loading the stream.
    let chains: Arc<Vec<Chain>> = Arc::new((0..writers).map(|_| tokio::sync::Mutex::new((0, ZERO_HASH))).collect());
    let store = store.clone();
    run(writers, duration, batch as u64, move |w, _| {
        let (store, chains) = (store.clone(), chains.clone());
        async move {
            let mut chain = chains[w].lock().await;
            let write = StreamWrite {
                stream_id: format!("bench-{run_id}-{w}"),
                expected: ExpectedVersion::Exact(chain.0),
                prev_hash: Some(chain.1),
                events: (0..batch).map(|_| event()).collect(),
                metadata: Metadata::system("bench"),
            };
            let recorded = store.append(&[write], None).await?;
            if let Some(last) = recorded.last() {
                *chain = (last.stream_version, last.hash_array());
            }
            Ok(())
        }
    })
    .await
}

async fn baseline_scenario(pool: &PgPool, writers: usize, batch: usize, duration: Duration) -> anyhow::Result<f64> {
    let run_id = Uuid::new_v4();
    let pool = pool.clone();
    let metadata = serde_json::to_value(Metadata::system("bench"))?;
    run(writers, duration, batch as u64, move |w, i| {
        let (pool, metadata) = (pool.clone(), metadata.clone());
        async move {
            let n = batch as i64;
            let versions: Vec<i64> = (0..n).map(|k| i as i64 * n + k + 1).collect();
            let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
            let payloads: Vec<serde_json::Value> = (0..n).map(|_| payload()).collect();
            let hashes: Vec<Vec<u8>> = (0..n).map(|_| vec![7u8; 32]).collect();
            sqlx::query(
                "INSERT INTO baseline (position, stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, \
                 recorded_at, prev_hash, hash) \
                 SELECT nextval('baseline_position'), $1, t.v, t.id, 'terminal.health_reported', 1, t.p, $2, now(), t.h, t.h \
                 FROM UNNEST($3::bigint[], $4::uuid[], $5::jsonb[], $6::bytea[]) AS t(v, id, p, h)",
            )
            .bind(format!("bench-{run_id}-{w}"))
            .bind(&metadata)
            .bind(&versions)
            .bind(&ids)
            .bind(&payloads)
            .bind(&hashes)
            .execute(&pool)
            .await?;
            Ok(())
        }
    })
    .await
}

/// Runs every scenario and prints the table. Returns the figures.
pub async fn append(database_url: &str, seconds: u64) -> anyhow::Result<Vec<Figure>> {
    let pool = bench_pool(database_url, 40).await?;
    let store = EventStore::new(pool.clone());
    let duration = Duration::from_secs(seconds);
    let scenarios = [(1usize, 1usize), (8, 1), (32, 1), (1, 100), (8, 100)];
    let mut figures = Vec::new();
    println!("chargeledger bench append: {seconds} s per measurement, same database, same rows");
    println!("{:<34} {:>14} {:>14} {:>8}", "scenario", "store ev/s", "baseline ev/s", "ratio");
    for (writers, batch) in scenarios {
        let baseline_eps = baseline_scenario(&pool, writers, batch, duration).await?;
        let store_eps = store_scenario(&store, writers, batch, duration).await?;
        let scenario = if batch == 1 {
            format!("single-event appends, {writers} writer(s)")
        } else {
            format!("batches of {batch}, {writers} writer(s)")
        };
        println!("{scenario:<34} {store_eps:>14.0} {baseline_eps:>14.0} {:>8.2}", store_eps / baseline_eps);
        figures.push(Figure { scenario, store_eps, baseline_eps });
    }
    pool.close().await;
    Ok(figures)
}
