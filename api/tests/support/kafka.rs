//! A real Kafka-protocol broker for the tests: tansu on a free port with
//! in-memory storage (installed by the test command), and a consumer that
//! reads whole topics from the beginning.
#![allow(dead_code, clippy::unwrap_used)]

use std::{collections::BTreeMap, path::PathBuf, process::Stdio, time::Duration};

use super::free_port;
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    message::{Headers, Message},
    ClientConfig,
};
use tokio::process::{Child, Command};

pub struct Tansu {
    pub brokers: String,
    child: Option<Child>,
}

fn tansu() -> PathBuf {
    std::env::var_os("CHARGELEDGER_TEST_TANSU").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("tansu"))
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start tansu ({}): {e}; run scripts/test.sh, which installs it", tansu().display())
            });
        let brokers = format!("127.0.0.1:{port}");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&brokers).await.is_ok() {
                return Self { brokers, child: Some(child) };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tansu did not listen on {brokers}");
    }

    /// Kills the broker (its in-memory data goes with it).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: serde_json::Value,
    pub headers: BTreeMap<String, String>,
}

/// A consumer in a fresh group, reading `topics` from the beginning.
pub fn consumer(brokers: &str, topics: &[&str]) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .unwrap();
    consumer.subscribe(topics).unwrap();
    consumer
}

/// Reads until messages with `count` distinct `ce_id`s arrived (duplicates are
/// kept in the result), or `limit` passed.
pub async fn consume(brokers: &str, topics: &[&str], count: usize, limit: Duration) -> Vec<Received> {
    let consumer = consumer(brokers, topics);
    let mut out = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + limit;
    while ids.len() < count && tokio::time::Instant::now() < deadline {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await else { continue };
        let m = next.unwrap();
        let mut headers = BTreeMap::new();
        if let Some(h) = m.headers() {
            for header in h.iter() {
                let value = header.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
                headers.insert(header.key.to_owned(), value);
            }
        }
        ids.insert(headers.get("ce_id").cloned().unwrap_or_default());
        out.push(Received {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
            payload: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap(),
            headers,
        });
    }
    out
}
