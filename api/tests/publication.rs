//! Publication hides personal data and secrets (ADR 0018): a full charge
//! session with a real `ocpp` 1.6 charge point, the Pagar.me fake, a receipt,
//! charger commands carrying secrets to a 1.6 and a 2.0.1 charger and a wallet
//! top-up; then every event of the log goes through the relay's record
//! builder and the webhook body builder, the bodies a receiver really got are
//! read, and (when tansu is installed) the real topics are consumed: no CPF,
//! e-mail, id tag, card token, password, hash or configuration secret appears
//! in any of them, nor in the tracing output. Also the SSRF guard's API cases.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use chargeledger_api::{auth::Role, config::Config};
use commands::{publication::Redactor, EventStore, RecordedEvent};
use gateways::kafka::KafkaConfig;
use rdkafka::message::Headers;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, kafka::Tansu, pagarme::FakePagarme, receiver::Receiver, smtp::SmtpSink, *};
use uuid::Uuid;

const KEY: &[u8] = b"publication-test-key-0123456789-abcdef";
const EMAIL: &str = "ana.driver@company.com";
const CPF: &str = "123.456.789-09";
const CPF_DIGITS: &str = "12345678909";
const CARD_TOKEN: &str = "tok_ok";
const AUTHORIZATION_KEY: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
const BASIC_AUTH_PASSWORD: &str = "BasicAuthPassword-Value-77";

/// Everything the app logs through `tracing`, for the scan.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,chargeledger_api=debug,commands=debug,gateways=debug,projections=debug")
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tansu_available() -> bool {
    let named = std::env::var_os("CHARGELEDGER_TEST_TANSU").map(PathBuf::from);
    named.is_some_and(|p| p.exists())
        || std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("tansu").is_file()))
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let (status, answer) = json_of(app.post(path, token, &body).send().await.unwrap()).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

async fn session(app: &TestApp, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = json_of(app.get(&format!("/v1/charge-sessions/{id}"), token).send().await.unwrap()).await.1;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the session never got there: {last}");
}

async fn connector_available(app: &TestApp, token: &str, id: &str) {
    for _ in 0..400 {
        let (_, c) = json_of(app.get(&format!("/v1/terminals/{id}/connectors"), token).send().await.unwrap()).await;
        if c[0]["status"] == "Available" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} never showed Available");
}

/// Every needle that occurs in `text`.
fn leaks<'a>(text: &str, needles: &'a [String]) -> Vec<&'a str> {
    needles.iter().filter(|n| text.contains(n.as_str())).map(String::as_str).collect()
}

/// The text of a Kafka record as the relay builds it: key, value and headers.
fn kafka_text(config: &KafkaConfig, event: &RecordedEvent) -> (Value, String) {
    let record = gateways::kafka::record(config, event);
    let mut text = format!("{} {} ", record.topic, record.key);
    text.push_str(&String::from_utf8_lossy(&record.payload));
    for header in record.headers.iter() {
        text.push_str(&format!(" {}={}", header.key, String::from_utf8_lossy(header.value.unwrap_or_default())));
    }
    (serde_json::from_slice(&record.payload).unwrap(), text)
}

#[sqlx::test(migrations = "../migrations")]
async fn no_published_payload_of_a_full_session_carries_personal_data_or_secrets(pool: PgPool) {
    let logs = logs();
    let redactor = Redactor::new(KEY);
    let (fake, fake_url) = FakePagarme::start().await;
    let mut smtp = SmtpSink::new();
    smtp.start().await;
    let mut tansu = if tansu_available() { Some(Tansu::start().await) } else { None };
    let mut config: Config = test_config(&pool);
    config.payments.gateway = "pagarme".into();
    config.payments.pagarme_base_url = fake_url;
    config.payments.pagarme_secret_key = Some(support::pagarme::SECRET_KEY.to_owned().into());
    config.payments.pagarme_timeout = Duration::from_millis(800);
    config.payments.reconcile_interval = Duration::from_millis(100);
    config.smtp_url = Some(smtp.url.clone().into());
    config.sessions.retry_schedule = vec![Duration::from_millis(100); 7];
    config.webhooks.redactor = redactor.clone();
    // The relay's configuration: the app's own when a broker runs, else the same settings unused.
    let kafka = KafkaConfig {
        redactor: redactor.clone(),
        topic_prefix: format!("pub{}", Uuid::new_v4().simple()),
        ..KafkaConfig::new(tansu.as_ref().map_or("127.0.0.1:1".to_owned(), |t| t.brokers.clone()))
    };
    if tansu.is_some() {
        config.kafka = Some(kafka.clone());
    }
    let app = TestApp::start_with(config, pool.clone()).await;
    let company = Uuid::new_v4();
    let token = app.token(company, Role::Operator);
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());

    // A subscription to everything, before anything happens.
    let receiver = Receiver::start().await;
    let hook = post(&app, &token, "/api/v1/webhooks", json!({"url": receiver.url, "eventTypes": ["*"]})).await;
    std::fs::write(receiver.dir.join("secrets"), hook["secret"].as_str().unwrap()).unwrap();

    // Chargers with passwords: a 1.6 for the session, a 1.6 and a 2.0.1 for commands.
    for (id, version) in [("EVSE-PUB16", "1.6"), ("EVSE-CFG16", "1.6"), ("EVSE-CFG201", "2.0.1")] {
        let mut body = terminal(id, 40);
        body["ocppVersion"] = json!(version);
        post(&app, &token, "/v1/terminals", body).await;
    }

    // The session: card, CPF, e-mail; the gateway generates the id tag.
    let mut cp = Cp::spawn("session16", &base, "EVSE-PUB16", PASSWORD, &["normal", &(1000 + 7_500).to_string()]);
    cp.until("READY").await;
    connector_available(&app, &token, "EVSE-PUB16").await;
    let started = post(
        &app,
        &token,
        "/charge/start",
        json!({"stationId": 40, "chargePointId": "EVSE-PUB16", "connectorId": 1, "method": "CREDIT_CARD",
               "amount": 5000, "email": EMAIL, "cpf": CPF, "cardToken": CARD_TOKEN, "customerId": "cust-pub",
               "charger": {"price": 1.50, "fixed_connection_cost": 2.00}}),
    )
    .await;
    let id = started["sessionId"].as_str().unwrap().to_owned();
    cp.until("CHARGING").await;
    session(&app, &token, &id, |s| s["status"] == "CHARGING" && s["energyWh"] == 4000).await;
    post(&app, &token, "/charge/stop", json!({"sessionId": id})).await;
    session(&app, &token, &id, |s| s["status"] == "COMPLETED" && s["receiptSent"] == true).await;
    let out = cp.result().await;
    let id_tag = out["idTag"].as_str().unwrap().to_owned();

    // Secrets in charger configuration commands, 1.6 and 2.0.1.
    let mut cfg16 = Cp::spawn("serve16", &base, "EVSE-CFG16", PASSWORD, &["1"]);
    cfg16.until("READY").await;
    let answer = post(
        &app,
        &token,
        "/v1/terminals/EVSE-CFG16/commands",
        json!({"action": "ChangeConfiguration", "payload": {"key": "AuthorizationKey", "value": AUTHORIZATION_KEY}}),
    )
    .await;
    assert_eq!(answer["response"]["status"], "Accepted", "{answer}");
    cfg16.result().await;
    let mut cfg201 = Cp::spawn("serve201", &base, "EVSE-CFG201", PASSWORD, &["1"]);
    cfg201.until("READY").await;
    let set = json!({"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
                     "attributeValue": BASIC_AUTH_PASSWORD});
    let answer = post(
        &app,
        &token,
        "/v1/terminals/EVSE-CFG201/commands",
        json!({"action": "SetVariables", "payload": {"setVariableData": [set]}}),
    )
    .await;
    assert_eq!(answer["response"]["setVariableResult"][0]["attributeStatus"], "Accepted", "{answer}");
    cfg201.result().await;

    // A wallet top-up by card.
    let top_up = post(
        &app,
        &token,
        "/v1/wallets/cust-pub/top-ups",
        json!({"amount": 10000, "method": "CREDIT_CARD", "cardToken": CARD_TOKEN}),
    )
    .await;
    assert_eq!(top_up["status"], "succeeded", "{top_up}");

    // Every delivery of this company's events reaches the receiver.
    let store = EventStore::new(pool.clone());
    let registered: i64 =
        sqlx::query_scalar("SELECT max(position) FROM events WHERE event_type = 'webhook.registered'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut events = Vec::new();
    let mut delivered = Vec::new();
    for _ in 0..1200 {
        events = store.read_all(0, 100_000).await.unwrap();
        let expected: std::collections::HashSet<String> = events
            .iter()
            .filter(|e| e.position > registered && e.company_id() == Some(company))
            .filter(|e| !matches!(e.category(), "webhook" | "webhook_delivery"))
            .map(|e| e.event_id.to_string())
            .collect();
        delivered = receiver.received();
        let got: std::collections::HashSet<String> =
            delivered.iter().filter_map(|m| m["body"]["id"].as_str().map(str::to_owned)).collect();
        if !expected.is_empty() && expected.is_subset(&got) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered.len() > 40, "deliveries: {}", delivered.len());
    assert!(delivered.iter().all(|m| m["verified"] == json!([0])), "every delivery is signed");

    // What must never leave, found in the log itself (so the scan can fail).
    let hash: String = sqlx::query_scalar(
        "SELECT payload->>'passwordHash' FROM events WHERE event_type = 'terminal.registered' LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(hash.starts_with("$argon2"), "{hash}");
    let log_text: String = events.iter().map(|e| e.payload.to_string()).collect();
    // (The gateway body's digits-only CPF is already redacted in the log itself.)
    for present in [EMAIL, CPF, &id_tag, &hash, AUTHORIZATION_KEY, BASIC_AUTH_PASSWORD] {
        assert!(log_text.contains(present), "the log should hold {present} for the scan to mean anything");
    }
    let needles: Vec<String> = [EMAIL, CPF, CPF_DIGITS, &id_tag, CARD_TOKEN, PASSWORD, &hash, AUTHORIZATION_KEY]
        .into_iter()
        .chain([BASIC_AUTH_PASSWORD, "$argon2"])
        .map(str::to_owned)
        .collect();

    assert!(events.iter().any(|e| e.stream_id.starts_with("wallet-")), "the top-up wrote a wallet stream");
    // Every event through the relay's record builder and the webhook body builder.
    let pseudonym = redactor.pseudonym(&id_tag);
    let mut pseudonymized = 0;
    for event in &events {
        let (value, text) = kafka_text(&kafka, event);
        assert_eq!(leaks(&text, &needles), Vec::<&str>::new(), "Kafka record of {}: {text}", event.event_type);
        let body = commands::publication::webhook_body_of(&redactor, event);
        let body_text = body.to_string();
        assert_eq!(
            leaks(&body_text, &needles),
            Vec::<&str>::new(),
            "webhook body of {}: {body_text}",
            event.event_type
        );
        assert_eq!(body["data"], value, "Kafka and webhooks publish the same payload");
        // Where an entity is named (key, ce_subject, subject), a wallet's customer is a pseudonym.
        let record = gateways::kafka::record(&kafka, event);
        let subject: Vec<String> = record
            .headers
            .iter()
            .filter(|h| h.key == "ce_subject")
            .map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
            .collect();
        let named = format!("{} {subject:?} {}", record.key, body["subject"]);
        assert!(!named.contains("cust-pub"), "the customer id names a published entity: {named}");
        if event.stream_id.starts_with("wallet-") {
            assert!(record.key.contains(":customer_") && subject == [record.key.clone()], "{named}");
        }
        if text.contains(&pseudonym) {
            pseudonymized += 1;
        }
    }
    // The tag is still correlatable: session start, charger start, frames and the remote start command.
    for kind in ["charge_session.started", "charger.transaction_started"] {
        let e = events.iter().find(|e| e.event_type == kind).unwrap();
        assert_eq!(redactor.publish(kind, &e.payload)["idTag"], pseudonym, "{kind}");
    }
    assert!(pseudonymized >= 5, "the pseudonym appears in {pseudonymized} records");

    // The bodies really delivered.
    let delivered_text = serde_json::to_string(&delivered).unwrap();
    assert_eq!(leaks(&delivered_text, &needles), Vec::<&str>::new(), "delivered webhook bodies");
    assert!(delivered_text.contains(&pseudonym));
    assert!(delivered.iter().any(|m| m["body"]["type"] == "ocpp.frame_sent"
        && m["body"]["data"]["raw"].as_str().is_some_and(|r| r.contains("AuthorizationKey"))));

    // The real topics.
    if let Some(broker) = &tansu {
        let categories: std::collections::BTreeSet<&str> = events.iter().map(RecordedEvent::category).collect();
        let topics: Vec<String> = categories.iter().map(|c| kafka.topic(c)).collect();
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let received = support::kafka::consume(&broker.brokers, &topics, events.len(), Duration::from_secs(120)).await;
        assert!(received.len() >= events.len(), "{} of {} consumed", received.len(), events.len());
        for m in &received {
            let text = format!("{} {} {:?}", m.key, m.payload, m.headers);
            assert_eq!(leaks(&text, &needles), Vec::<&str>::new(), "consumed from {}: {text}", m.topic);
        }
    }
    if let Some(t) = tansu.as_mut() {
        t.stop().await;
    }

    // Nor in what the app logged.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert_eq!(leaks(&logged, &needles), Vec::<&str>::new(), "tracing output");
    fake.problems().is_empty().then_some(()).unwrap();
    assert_log_verifies(&app.running.state.store).await;
}

#[test]
fn one_publication_key_keys_both_kafka_and_webhooks() {
    let dir = std::env::temp_dir().join(format!("chargeledger-publication-config-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    let key = "a-publication-key-of-at-least-32-bytes!";
    std::fs::write(&file, format!("kafka_brokers = \"127.0.0.1:9092\"\npublication_key = \"{key}\"\n")).unwrap();
    let config = Config::load(Some(&file)).unwrap();
    let expected = Redactor::new(key.as_bytes()).pseudonym("CL0001");
    assert_eq!(config.webhooks.redactor.pseudonym("CL0001"), expected);
    assert_eq!(config.kafka.unwrap().redactor.pseudonym("CL0001"), expected);
    let jwt = secrecy::ExposeSecret::expose_secret(&config.jwt_secret).as_bytes().to_vec();
    assert_ne!(Redactor::new(&jwt).pseudonym("CL0001"), expected, "never the JWT secret");
    std::fs::write(&file, "publication_key = \"too-short\"\n").unwrap();
    assert!(Config::load(Some(&file)).unwrap_err().to_string().contains("CHARGELEDGER_PUBLICATION_KEY"));
}
