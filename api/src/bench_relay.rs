//! `chargeledger bench relay`: how fast the Kafka relay publishes the log, and
//! its lag under a steady append load, against a baseline measured in the same
//! run: a bare producer sending the same messages (same keys, payloads and
//! headers, same delivery guarantees) without reading the log or moving a
//! checkpoint.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use commands::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use gateways::kafka::{KafkaConfig, Relay};
use rdkafka::producer::FutureRecord;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const STREAMS: usize = 200;

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "charger.meter_values_recorded".into(),
        schema_version: 1,
        payload: json!({"connectorId": 1, "transactionId": format!("tx-{}", n % STREAMS),
                        "samples": [{"timestamp": "2026-11-21T12:00:00Z", "energyWh": n, "powerW": 7400}]}),
    }
}

/// Appends `count` events over [`STREAMS`] streams, in appends of up to 100.
async fn fill(store: &EventStore, run: Uuid, count: usize, offset: usize) -> anyhow::Result<()> {
    let mut written = 0;
    while written < count {
        let n = (count - written).min(100);
        let stream = (offset + written) / 100 % STREAMS;
        let write = StreamWrite {
            stream_id: format!("charger-bench-{run}-{stream}"),
            expected: ExpectedVersion::Any,
            prev_hash: None,
            events: (0..n).map(|k| event(offset + written + k)).collect(),
            metadata: Metadata::system("bench"),
        };
        store.append(&[write], None).await?;
        written += n;
    }
    Ok(())
}

/// Events per second of a bare producer sending what the relay would send.
async fn baseline(config: &KafkaConfig, store: &EventStore, count: usize) -> anyhow::Result<f64> {
    let events = store.read_all(0, count as i64).await?;
    let producer = gateways::kafka::producer(config)?;
    let topic = config.topic("baseline");
    gateways::kafka::create_topic(&gateways::kafka::admin(config)?, config, &topic).await?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(events.len());
    for e in &events {
        // The relay's own record builder (redaction included), to another topic.
        let gateways::kafka::Record { key, payload, headers, timestamp, .. } = gateways::kafka::record(config, e);
        let mut record = FutureRecord::to(&topic).key(&key).payload(&payload).timestamp(timestamp).headers(headers);
        loop {
            match producer.send_result(record) {
                Ok(d) => {
                    deliveries.push(d);
                    break;
                }
                Err((rdkafka::error::KafkaError::MessageProduction(_), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    for d in deliveries {
        d.await.context("delivery canceled")?.map_err(|(e, _)| e)?;
    }
    Ok(events.len() as f64 / started.elapsed().as_secs_f64())
}

/// Runs the bench and prints the figures.
pub async fn relay(database_url: &str, brokers: &str, events: usize, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let pool = crate::bench::scratch_pool(database_url, "chargeledger_bench_relay", 8).await?;
    let store = EventStore::new(pool.clone());
    let run = Uuid::new_v4();
    let mut config = KafkaConfig::new(brokers);
    config.topic_prefix = format!("bench-{}", &run.simple().to_string()[..8]);
    println!("chargeledger bench relay: {events} events over {STREAMS} streams; broker {brokers}");

    fill(&store, run, events, 0).await?;
    let baseline_eps = baseline(&config, &store, events).await?;

    // Backlog: the relay drains what is already in the log.
    let mut relay = Relay::new(store.clone(), config.clone())?;
    let started = Instant::now();
    let published = relay.publish_available().await?;
    let relay_eps = published as f64 / started.elapsed().as_secs_f64();
    println!("{:<44} {:>12} {:>12} {:>7}", "backlog drain", "relay ev/s", "bare ev/s", "ratio");
    println!(
        "{:<44} {relay_eps:>12.0} {baseline_eps:>12.0} {:>7.2}",
        format!("{events} events"),
        relay_eps / baseline_eps
    );

    // Steady load: appends at `rate` while the relay runs; lag sampled every 50 ms.
    let shutdown = CancellationToken::new();
    // The same relay, warm (connected, topics known), as it would be in a running process.
    let relay_task = tokio::spawn(relay.run(shutdown.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let per_tick = (rate as usize / 100).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut offset = events;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                fill(&store, run, per_tick, offset).await?;
                offset += per_tick;
            }
            anyhow::Ok(offset - events)
        })
    };
    let mut lags = Vec::new();
    let load_started = Instant::now();
    while load_started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let checkpoint = gateways::kafka::checkpoint(&store).await?;
        lags.push(store.count_after(checkpoint, 10_000_000).await?);
    }
    stop.store(true, Ordering::Relaxed);
    let appended = writer.await??;
    let load_secs = load_started.elapsed().as_secs_f64();
    let caught_up = Instant::now();
    loop {
        let checkpoint = gateways::kafka::checkpoint(&store).await?;
        if store.count_after(checkpoint, 1).await? == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain_ms = caught_up.elapsed().as_millis();
    shutdown.cancel();
    let _ = relay_task.await;
    lags.sort_unstable();
    let pct = |p: f64| lags.get(((lags.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
    println!(
        "steady load: {:.0} ev/s appended for {seconds} s; relay lag p50 {} / p99 {} / max {} events; \
         caught up {drain_ms} ms after the load stopped",
        appended as f64 / load_secs,
        pct(0.5),
        pct(0.99),
        lags.last().copied().unwrap_or(0)
    );
    pool.close().await;
    Ok(())
}
