//! The Kafka relay against a real Kafka-protocol broker (tansu): every event
//! of the log reaches its topic with CloudEvents headers, once per `ce_id`
//! after dedupe, in order per key; a relay killed mid-stream loses nothing.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use chargeledger_api::auth::Role;
use commands::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use gateways::kafka::{KafkaConfig, Relay};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{kafka::*, *};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CATEGORIES: [&str; 4] = ["terminal", "charge_session", "payment_intent", "ocpp"];

/// Appends `per_stream` events to each of `streams` streams per category,
/// interleaving streams and categories; returns (event id → (stream, version)).
async fn append(store: &EventStore, company: Uuid, streams: usize, per_stream: usize, round: &str) -> usize {
    let mut appended = 0;
    for v in 0..per_stream {
        for s in 0..streams {
            for category in CATEGORIES {
                let stream_id = format!("{category}-{round}{s}");
                let event = NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: format!("{category}.relay_probe"),
                    schema_version: 1,
                    payload: json!({"stream": stream_id, "n": v, "text": "ação — ünïcode"}),
                };
                let write = StreamWrite {
                    stream_id,
                    expected: ExpectedVersion::Any,
                    prev_hash: None,
                    events: vec![event],
                    metadata: Metadata {
                        company_id: Some(company),
                        correlation_id: Uuid::new_v4(),
                        causation_id: Some(Uuid::new_v4()),
                        actor: "test".into(),
                        command_id: None,
                    },
                };
                store.append(&[write], None).await.unwrap();
                appended += 1;
            }
        }
    }
    appended
}

fn topics() -> Vec<String> {
    CATEGORIES.iter().map(|c| format!("chargeledger.{c}")).collect()
}

async fn wait_relayed(store: &EventStore) {
    for _ in 0..1200 {
        let head = store.head_position().await.unwrap();
        if gateways::kafka::checkpoint(store).await.unwrap() >= head {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the relay never caught up with the log");
}

/// The log's events by id: (stream, version, position, payload, type, metadata).
async fn log(pool: &PgPool) -> HashMap<String, (String, i64, i64, Value, String, Value)> {
    let rows: Vec<(Uuid, String, i64, i64, Value, String, Value)> = sqlx::query_as(
        "SELECT event_id, stream_id, stream_version, position, payload, event_type, metadata FROM events",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(id, s, v, p, payload, t, m)| (id.to_string(), (s, v, p, payload, t, m))).collect()
}

/// After dedupe by `ce_id` (first occurrence), each key's events arrive in
/// stream-version order with no gap.
fn assert_in_order_per_key(received: &[Received], log: &HashMap<String, (String, i64, i64, Value, String, Value)>) {
    let mut seen = BTreeSet::new();
    let mut by_key: BTreeMap<(String, i32), Vec<i64>> = BTreeMap::new();
    let mut sorted: Vec<&Received> = received.iter().collect();
    sorted.sort_by_key(|r| (r.topic.clone(), r.partition, r.offset));
    for r in sorted {
        let id = &r.headers["ce_id"];
        if seen.insert(id.clone()) {
            by_key.entry((r.key.clone(), r.partition)).or_default().push(log[id].1);
        }
    }
    let keys: BTreeSet<&String> = by_key.keys().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), by_key.len(), "a key was spread over partitions");
    for ((key, _), versions) in by_key {
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected, "{key} out of order");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn every_event_reaches_its_topic_once_in_order_with_cloudevents_headers(pool: PgPool) {
    let broker = Tansu::start().await;
    let store = EventStore::new(pool.clone());
    let company = Uuid::new_v4();
    let appended = append(&store, company, 12, 6, "s").await; // 4 categories × 12 streams × 6 = 288

    let mut config = KafkaConfig::new(broker.brokers.clone());
    config.partitions = 3;
    config.batch = 100;
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(Relay::new(store.clone(), config).unwrap().run(shutdown.clone()));
    wait_relayed(&store).await;

    let names = topics();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let received = consume(&broker.brokers, &refs, appended, Duration::from_secs(90)).await;
    shutdown.cancel();
    relay.await.unwrap();

    let log = log(&pool).await;
    assert_eq!(received.len(), appended, "every event arrives, and once");
    let ids: BTreeSet<&String> = received.iter().map(|r| &r.headers["ce_id"]).collect();
    assert_eq!(ids.len(), appended, "each ce_id once");
    assert!(log.keys().all(|id| ids.contains(id)), "an event is missing");
    for r in &received {
        let (stream, _, position, payload, event_type, metadata) = &log[&r.headers["ce_id"]];
        let category = stream.split_once('-').unwrap().0;
        assert_eq!(r.topic, format!("chargeledger.{category}"));
        assert_eq!(&r.key, stream, "keyed by stream id");
        assert_eq!(&r.payload, payload);
        let h = &r.headers;
        assert_eq!(h["ce_specversion"], "1.0");
        assert_eq!(h["ce_type"], format!("{event_type}.v1"));
        assert_eq!(h["ce_source"], format!("/chargeledger/{category}"));
        assert_eq!(&h["ce_subject"], stream);
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["ce_position"], position.to_string());
        assert_eq!(h["ce_companyid"], company.to_string());
        assert_eq!(h["ce_correlationid"], metadata["correlationId"].as_str().unwrap());
        assert_eq!(h["ce_causationid"], metadata["causationId"].as_str().unwrap());
        assert!(chrono::DateTime::parse_from_rfc3339(&h["ce_time"]).is_ok(), "{}", h["ce_time"]);
    }
    assert_in_order_per_key(&received, &log);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_relay_killed_mid_stream_resumes_from_its_checkpoint_and_loses_nothing(pool: PgPool) {
    let broker = Tansu::start().await;
    let store = EventStore::new(pool.clone());
    let company = Uuid::new_v4();
    let mut appended = append(&store, company, 25, 10, "a").await; // 1000 events
    let head = store.head_position().await.unwrap();

    let mut config = KafkaConfig::new(broker.brokers.clone());
    config.partitions = 2;
    config.batch = 20;
    let first = tokio::spawn(Relay::new(store.clone(), config.clone()).unwrap().run(CancellationToken::new()));
    let mut at_kill = 0;
    for _ in 0..2000 {
        at_kill = gateways::kafka::checkpoint(&store).await.unwrap();
        if at_kill > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.abort(); // a crash: no flush, no goodbye
    let _ = first.await;
    let at_kill = at_kill.max(gateways::kafka::checkpoint(&store).await.unwrap());
    assert!(at_kill > 0 && at_kill < head, "the relay was killed mid-stream ({at_kill} of {head})");

    // More events while it is down, then a new relay.
    appended += append(&store, company, 5, 4, "b").await;
    let shutdown = CancellationToken::new();
    let second = tokio::spawn(Relay::new(store.clone(), config).unwrap().run(shutdown.clone()));
    wait_relayed(&store).await;

    let names = topics();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let received = consume(&broker.brokers, &refs, appended, Duration::from_secs(90)).await;
    shutdown.cancel();
    second.await.unwrap();

    let log = log(&pool).await;
    let ids: BTreeSet<&String> = received.iter().map(|r| &r.headers["ce_id"]).collect();
    let missing: Vec<&String> = log.keys().filter(|id| !ids.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events lost, e.g. {:?}",
        missing.len(),
        log.len(),
        &missing[..missing.len().min(3)]
    );
    assert_eq!(ids.len(), log.len(), "nothing that is not in the log");
    assert!(received.len() >= appended);
    assert_in_order_per_key(&received, &log);
}

#[sqlx::test(migrations = "../migrations")]
async fn serve_with_kafka_relays_and_reports_the_broker_in_health_and_metrics(pool: PgPool) {
    let mut broker = Tansu::start().await;
    let mut config = test_config(&pool);
    config.kafka = Some(KafkaConfig::new(broker.brokers.clone()));
    let app = TestApp::start_with(config, pool.clone()).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let (status, _) = json_of(app.post("/v1/terminals", &token, &terminal("EVSE-K1", 1)).send().await.unwrap()).await;
    assert_eq!(status, 201);
    wait_relayed(&app.running.state.store).await;
    // The sealer keeps appending: poll until a scrape sees the relay caught up.
    let (mut health, mut metrics) = (Value::Null, String::new());
    for _ in 0..100 {
        let (status, h) = json_of(app.client.get(app.url("/health/detailed")).send().await.unwrap()).await;
        assert_eq!(status, 200, "{h}");
        assert_eq!(h["kafka"]["status"], "up", "{h}");
        health = h;
        metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if health["relay"]["lagEvents"] == 0 && metrics.contains("chargeledger_relay_lag_events 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health["relay"]["lagEvents"], 0, "{health}");
    assert!(health["relay"]["checkpoint"].as_i64().unwrap() > 0, "{health}");
    assert!(metrics.contains("chargeledger_relay_lag_events 0"), "{metrics}");
    let received = consume(&broker.brokers, &["chargeledger.terminal"], 1, Duration::from_secs(60)).await;
    assert_eq!(received[0].headers["ce_type"], "terminal.registered.v1");
    assert_eq!(received[0].key, "terminal-EVSE-K1");
    assert_eq!(received[0].payload["terminalId"], "EVSE-K1");
    assert_eq!(received[0].payload["passwordHash"], Value::Null, "the charger password hash is not published");

    // Seals reach topic chargeledger.log; a digest taken from there anchors
    // `audit verify` (ADR 0003): the log checked against what was published.
    let seals = consume(&broker.brokers, &["chargeledger.log"], 1, Duration::from_secs(60)).await;
    assert_eq!(seals[0].headers["ce_type"], "log.range_sealed.v1", "{:?}", seals[0].headers);
    let digest = seals[0].payload["seal"].as_str().unwrap();
    let anchor: [u8; 32] = hex::decode(digest).unwrap().try_into().unwrap();
    let options = commands::audit::VerifyOptions { anchors: vec![anchor], ..Default::default() };
    let report = commands::audit::verify_with(&app.running.state.store, &options).await.unwrap();
    assert!(report.ok(), "the published seal anchors the log: {report:?}");

    // The broker goes away: not ready, and the detail says why.
    broker.stop().await;
    let status = app.client.get(app.url("/health/ready")).send().await.unwrap().status();
    assert_eq!(status, 503);
    let (_, health) = json_of(app.client.get(app.url("/health/detailed")).send().await.unwrap()).await;
    assert_eq!((health["status"].as_str(), health["kafka"]["status"].as_str()), (Some("degraded"), Some("down")));
}

/// Appends one `probe.relay_probe` event to `probe-<stream>`; returns its position.
async fn probe(store: &EventStore, stream: usize, payload: Value) -> i64 {
    let write = StreamWrite {
        stream_id: format!("probe-{stream}"),
        expected: ExpectedVersion::Any,
        prev_hash: None,
        events: vec![NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "probe.relay_probe".into(),
            schema_version: 1,
            payload,
        }],
        metadata: Metadata {
            company_id: None,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
            actor: "test".into(),
            command_id: None,
        },
    };
    store.append(&[write], None).await.unwrap()[0].position
}

/// `rounds` events on each of three probe streams; returns how many.
async fn probes(store: &EventStore, rounds: std::ops::Range<usize>) -> usize {
    let mut n = 0;
    for round in rounds {
        for stream in 0..3 {
            probe(store, stream, json!({"n": round})).await;
            n += 1;
        }
    }
    n
}

/// The relay's entry in `/health/detailed`, once `done` holds for it (at most ~30 s).
async fn relay_health_until(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (_, health) = json_of(app.client.get(app.url("/health/detailed")).send().await.unwrap()).await;
        if done(&health["relay"]) {
            return health;
        }
        last = health;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relay never reached the expected state: {last}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_message_too_large_stops_the_relay_at_its_event_until_restarted_with_a_bigger_limit(pool: PgPool) {
    let broker = Tansu::start().await;
    let mut kafka = KafkaConfig::new(broker.brokers.clone());
    kafka.partitions = 2;
    let mut small = kafka.clone();
    small.extra = vec![("message.max.bytes".into(), "8000".into())];
    let mut config = test_config(&pool);
    config.kafka = Some(small);
    let app = TestApp::start_with(config.clone(), pool.clone()).await;
    let store = app.running.state.store.clone();

    let before = probes(&store, 0..4).await;
    let poison = probe(&store, 1, json!({"n": 4, "blob": "x".repeat(20_000)})).await;
    let after = probes(&store, 5..9).await;

    // The relay stops at the poison event and says why.
    let health = relay_health_until(&app, |relay| relay["status"] == "failed").await;
    let relay = &health["relay"];
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(relay["stoppedAt"], poison, "{health}");
    let detail = relay["detail"].as_str().unwrap();
    let prefix =
        format!("event at position {poison} (type probe.relay_probe) cannot be published: message too large (");
    assert!(detail.starts_with(&prefix) && detail.ends_with(" bytes > message.max.bytes 8000)"), "{detail}");
    assert!(!detail.contains("xxxx"), "no payload in the detail: {detail}");
    let last_before: i64 = sqlx::query_scalar("SELECT max(position) FROM events WHERE position < $1")
        .bind(poison)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(relay["checkpoint"], last_before, "the checkpoint stays just before the poison event: {health}");
    assert_eq!(gateways::kafka::checkpoint(&store).await.unwrap(), last_before);
    assert_eq!(gateways::kafka::stopped_at(&store).await.unwrap(), Some(poison));
    // The API keeps serving (drivers can still charge): readiness is about
    // taking requests, the stopped relay is reported in detail and metrics.
    let ready = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chargeledger_relay_stopped 1"), "{metrics}");
    assert!(metrics.contains(&format!("chargeledger_relay_stopped_position {poison}")), "{metrics}");
    assert!(metrics.contains("chargeledger_relay_producer_recreations_total 0"), "{metrics}");

    // What came before is published; nothing after the poison event is.
    let received = consume(&broker.brokers, &["chargeledger.probe"], before + 1, Duration::from_secs(20)).await;
    let ids: BTreeSet<&String> = received.iter().map(|r| &r.headers["ce_id"]).collect();
    assert_eq!(ids.len(), before, "exactly the events before the poison one");
    assert!(received.iter().all(|r| r.headers["ce_position"].parse::<i64>().unwrap() < poison));
    app.running.stop().await;

    // Restarted with the default limit: everything arrives, in order per key.
    let mut config = config;
    config.kafka = Some(kafka);
    let app = TestApp::start_with(config, pool.clone()).await;
    let health =
        relay_health_until(&app, |relay| relay["status"] == "running" && relay["checkpoint"].as_i64() > Some(poison))
            .await;
    assert_eq!(health["relay"]["stoppedAt"], Value::Null, "{health}");
    assert_eq!(gateways::kafka::stopped_at(&store).await.unwrap(), None);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chargeledger_relay_stopped 0"), "{metrics}");
    let total = before + 1 + after;
    let received = consume(&broker.brokers, &["chargeledger.probe"], total, Duration::from_secs(90)).await;
    let ids: BTreeSet<&String> = received.iter().map(|r| &r.headers["ce_id"]).collect();
    assert_eq!(ids.len(), total, "no event lost");
    let big = received.iter().find(|r| r.headers["ce_position"] == poison.to_string()).unwrap();
    assert_eq!(big.payload["blob"].as_str().map(str::len), Some(20_000));
    let log: HashMap<_, _> = log(&pool).await.into_iter().filter(|(_, e)| e.0.starts_with("probe-")).collect();
    assert_eq!(log.len(), total);
    assert_in_order_per_key(&received, &log);
    app.running.stop().await;
}
