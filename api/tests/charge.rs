//! Charge orchestration end to end: a 1.6 (and a 2.0.1) charge point from the
//! PyPI `ocpp` package, the local Pagar.me fake and a real SMTP sink.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chargeledger_api::{auth::Role, config::Config};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, pagarme::FakePagarme, smtp::SmtpSink, *};
use uuid::Uuid;

struct World {
    app: TestApp,
    fake: FakePagarme,
    smtp: SmtpSink,
    token: String,
    base: String,
    config: Config,
    pool: PgPool,
}

async fn config(pool: &PgPool, fake_url: &str, smtp: &SmtpSink) -> Config {
    let mut c = test_config(pool);
    c.payments.gateway = "pagarme".into();
    c.payments.pagarme_base_url = fake_url.into();
    c.payments.pagarme_secret_key = Some(support::pagarme::SECRET_KEY.to_owned().into());
    c.payments.pagarme_timeout = Duration::from_millis(800);
    c.payments.reconcile_interval = Duration::from_millis(100);
    c.payments.webhook_public_keys_pem = Some(include_str!("fixtures/rs256-public.pem").into());
    c.smtp_url = Some(smtp.url.clone().into());
    c.sessions.retry_schedule = vec![Duration::from_millis(100); 7];
    c.sessions.start_timeout = Duration::from_secs(3);
    c
}

async fn world(pool: PgPool) -> World {
    let (fake, url) = FakePagarme::start().await;
    let mut smtp = SmtpSink::new();
    smtp.start().await;
    let config = config(&pool, &url, &smtp).await;
    let app = TestApp::start_with(config.clone(), pool.clone()).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    World { app, fake, smtp, token, base, config, pool }
}

impl World {
    async fn register(&self, id: &str, version: &str) {
        let mut body = terminal(id, 10);
        body["ocppVersion"] = json!(version);
        assert_eq!(json_of(self.app.post("/v1/terminals", &self.token, &body).send().await.unwrap()).await.0, 201);
    }

    async fn start(&self, cp: &str, method: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({
            "stationId": 10, "chargePointId": cp, "connectorId": 1, "method": method, "amount": 5000,
            "email": "driver@company.com", "cpf": "12345678909", "cardToken": "tok_ok", "saveCard": true,
            "charger": {"price": 1.50, "fixed_connection_cost": 2.00}
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        json_of(self.app.post("/charge/start", &self.token, &body).send().await.unwrap()).await
    }

    async fn session(&self, id: &str) -> Value {
        json_of(self.app.get(&format!("/v1/charge-sessions/{id}"), &self.token).send().await.unwrap()).await.1
    }

    /// Polls the session until `done` holds.
    async fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            last = self.session(id).await;
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the session never became {what}: {last}");
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    async fn ready_charger(&self, id: &str, mode: &str, meter_stop: i64) -> Cp {
        let mut cp = Cp::spawn("session16", &self.base, id, PASSWORD, &[mode, &meter_stop.to_string()]);
        cp.until("READY").await;
        // The gateway has recorded the connector Available once the read model shows it.
        for _ in 0..200 {
            let (_, c) =
                json_of(self.app.get(&format!("/v1/terminals/{id}/connectors"), &self.token).send().await.unwrap())
                    .await;
            if c[0]["status"] == "Available" {
                return cp;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the connector never showed Available");
    }
}

fn status_is<'a>(s: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| v["status"] == s
}

#[sqlx::test(migrations = "../migrations")]
async fn a_card_session_charges_for_the_energy_delivered_and_sends_a_receipt(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S1", "1.6").await;
    let mut cp = w.ready_charger("EVSE-S1", "normal", 1000 + 10_891).await;

    let (status, started) = w.start("EVSE-S1", "CREDIT_CARD", json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["success"], true);
    assert_eq!(started["paymentData"]["status"], "authorized");
    assert!(started["paymentData"]["orderId"].as_str().unwrap().starts_with("or_"));
    assert!(started["paymentData"]["chargeId"].as_str().unwrap().starts_with("ch_"));
    assert_eq!(
        (started["paymentData"]["pixQrCode"].clone(), started["paymentData"]["pixExpiresAt"].clone()),
        (Value::Null, Value::Null)
    );
    let id = started["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(w.fake.seen_at("POST", "/orders")[0].body["payments"][0]["amount"], 5000);

    cp.until("CHARGING").await;
    let charging = w.until(&id, "CHARGING with energy", |s| s["status"] == "CHARGING" && s["energyWh"] == 4000).await;
    assert_eq!(charging["runningCostCents"], 800, "2.00 + 1.50 × 4 kWh");

    let (status, stopping) =
        json_of(w.app.post("/charge/stop", &w.token, &json!({"sessionId": id})).send().await.unwrap()).await;
    assert_eq!((status, stopping["status"].as_str()), (200, Some("STOPPING")), "{stopping}");
    let (status, again) =
        json_of(w.app.post("/charge/stop", &w.token, &json!({"sessionId": id})).send().await.unwrap()).await;
    assert_eq!(status, 200, "a duplicate stop is not an error: {again}");
    assert_ne!(again["status"], "CHARGING", "{again}");
    let done =
        w.until(&id, "COMPLETED with a receipt", |s| s["status"] == "COMPLETED" && s["receiptSent"] == true).await;
    // 2.00 + 1.50 × 10.891 kWh = 18.3365 → R$ 18.34, captured; the rest released.
    assert_eq!(
        (done["energyWh"].as_i64(), done["capturedCents"].as_i64(), done["releasedCents"].as_i64()),
        (Some(10_891), Some(1834), Some(3166))
    );
    let captures = w.fake.seen_at("POST", "/capture");
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0].body["amount"], 1834, "exactly the computed cents");
    let out = cp.result().await;
    assert_eq!(out["seen"], json!(["RemoteStartTransaction", "RemoteStopTransaction"]));

    let mail = w.smtp.messages();
    assert_eq!(mail.len(), 1, "one receipt");
    for needle in [
        "driver@company.com",
        "EVSE-S1",
        "10.891 kWh",
        "R$ 1.50",
        "R$ 2.00",
        "Total: R$ 18.34",
        "R$ 50.00",
        "Capturado / Captured: R$ 18.34",
        "R$ 31.66",
        "18.3365",
    ] {
        assert!(mail[0].contains(needle), "receipt lacks {needle}:\n{}", mail[0]);
    }
    // The chain from the first frame to the capture.
    let (_, history) =
        json_of(w.app.get(&format!("/v1/charge-sessions/{id}/events"), &w.token).send().await.unwrap()).await;
    let types: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in [
        "charge_session.started",
        "payment_intent.authorized",
        "ocpp.frame_received",
        "charger.transaction_started",
        "charger.transaction_ended",
        "charge_session.settlement_computed",
        "payment_intent.captured",
        "charge_session.settled",
        "charge_session.receipt_sent",
    ] {
        assert!(types.contains(&t), "history lacks {t}: {types:?}");
    }
    let session_started: Value =
        sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'charge_session.started'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(
        session_started["tariff"],
        json!({"pricePerKwh": "1.5", "fixedConnectionCost": "2"}),
        "the tariff is recorded with the session"
    );
    w.fake.problems().is_empty().then_some(()).unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_starts_are_refused_before_any_money_moves(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S2", "1.6").await;
    // Offline charger: 409, nothing authorized.
    let (status, body) = w.start("EVSE-S2", "CREDIT_CARD", json!({})).await;
    assert_eq!((status, body["type"].as_str()), (409, Some("urn:chargeledger:problem:conflict")), "{body}");
    assert!(w.fake.seen().is_empty());
    let _cp = w.ready_charger("EVSE-S2", "idle", 0).await;
    let (status, body) =
        w.start("EVSE-S2", "BITCOIN", json!({"cpf": "12345678900", "email": "x", "amount": 0, "connectorId": 9})).await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["method", "amount", "email", "cpf", "connectorId"] {
        assert!(fields.contains(&f), "{f} not named: {fields:?}");
    }
    // A declined card: 402, the session failed, no OCPP command.
    let (status, body) = w.start("EVSE-S2", "CREDIT_CARD", json!({"cardToken": "tok_decline"})).await;
    assert_eq!((status, body["type"].as_str()), (402, Some("urn:chargeledger:problem:payment-declined")), "{body}");
    let id = body["sessionId"].as_str().unwrap();
    assert_eq!(w.session(id).await["status"], "FAILED");
    assert_eq!(w.count("SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested'").await, 0);
    assert!(w.fake.seen().iter().all(|s| s.method == "POST" && s.path == "/orders"));
}

#[sqlx::test(migrations = "../migrations")]
async fn stopping_during_pre_authorization_voids_and_sends_nothing(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S3", "1.6").await;
    let _cp = w.ready_charger("EVSE-S3", "idle", 0).await;
    let (status, started) = w.start("EVSE-S3", "PIX", json!({"cardToken": null})).await;
    assert_eq!((status, started["paymentData"]["status"].as_str()), (200, Some("pending")), "{started}");
    assert!(started["paymentData"]["pixQrCode"].is_string() && started["paymentData"]["pixExpiresAt"].is_string());
    let id = started["sessionId"].as_str().unwrap();
    assert_eq!(w.session(id).await["status"], "PREAUTHORIZING");
    let (_, stopped) =
        json_of(w.app.post("/charge/stop", &w.token, &json!({"sessionId": id})).send().await.unwrap()).await;
    assert_eq!(stopped["status"], "CANCELED");
    let (_, again) =
        json_of(w.app.post("/charge/stop", &w.token, &json!({"sessionId": id})).send().await.unwrap()).await;
    assert_eq!(again["status"], "CANCELED", "a duplicate stop answers with the current state");
    assert_eq!(w.fake.seen_at("DELETE", "/charges/").len(), 1, "the PIX charge is canceled once");
    assert_eq!(w.count("SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested'").await, 0);
    assert_eq!(stopped["paymentStatus"], "canceled");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rejected_remote_start_voids_the_payment(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S4", "1.6").await;
    let cp = w.ready_charger("EVSE-S4", "reject", 0).await;
    let (_, started) = w.start("EVSE-S4", "CREDIT_CARD", json!({})).await;
    let id = started["sessionId"].as_str().unwrap();
    let canceled =
        w.until(id, "CANCELED and voided", |s| s["status"] == "CANCELED" && s["paymentStatus"] == "canceled").await;
    assert_eq!(
        (canceled["stopReason"].as_str(), canceled["paymentStatus"].as_str()),
        (Some("remote_start_rejected"), Some("canceled"))
    );
    assert_eq!(w.fake.seen_at("DELETE", "/charges/").len(), 1);
    assert_eq!(cp.result().await["seen"], json!(["RemoteStartTransaction"]));
}

#[sqlx::test(migrations = "../migrations")]
async fn reaching_the_pre_authorized_amount_stops_the_charger_and_captures_it(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S5", "1.6").await;
    let cp = w.ready_charger("EVSE-S5", "budget", 1000 + 40_500).await;
    let (_, started) = w.start("EVSE-S5", "CREDIT_CARD", json!({})).await;
    let id = started["sessionId"].as_str().unwrap();
    let done = w.until(id, "COMPLETED", status_is("COMPLETED")).await;
    assert_eq!(
        (done["stopReason"].as_str(), done["capturedCents"].as_i64(), done["releasedCents"].as_i64()),
        (Some("budget_exhausted"), Some(5000), Some(0))
    );
    assert_eq!(w.fake.seen_at("POST", "/capture")[0].body["amount"], 5000, "never more than authorized");
    assert_eq!(
        cp.result().await["seen"],
        json!(["RemoteStartTransaction", "RemoteStopTransaction"]),
        "the platform stopped the charger itself"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_201_session_from_start_to_receipt(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S6", "2.0.1").await;
    let mut cp = Cp::spawn("session201", &w.base, "EVSE-S6", PASSWORD, &["6500"]);
    cp.until("READY").await;
    for _ in 0..200 {
        let (_, c) = json_of(w.app.get("/v1/terminals/EVSE-S6/connectors", &w.token).send().await.unwrap()).await;
        if c[0]["status"] == "Available" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, started) = w.start("EVSE-S6", "CREDIT_CARD", json!({})).await;
    assert_eq!(status, 200, "{started}");
    let id = started["sessionId"].as_str().unwrap();
    cp.until("CHARGING").await;
    w.until(id, "CHARGING", |s| s["status"] == "CHARGING" && s["energyWh"] == 2000).await;
    json_of(w.app.post("/charge/stop", &w.token, &json!({"sessionId": id})).send().await.unwrap()).await;
    let done = w.until(id, "COMPLETED", |s| s["status"] == "COMPLETED" && s["receiptSent"] == true).await;
    // 6000 Wh: 2.00 + 1.50 × 6 = R$ 11.00
    assert_eq!((done["energyWh"].as_i64(), done["capturedCents"].as_i64()), (Some(6000), Some(1100)));
    assert_eq!(cp.result().await["seen"], json!(["RequestStartTransaction", "RequestStopTransaction"]));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_pix_session_starts_when_paid_and_refunds_what_was_not_used(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S7", "1.6").await;
    let mut cp = w.ready_charger("EVSE-S7", "normal", 1000 + 6000).await;
    let (_, started) = w.start("EVSE-S7", "PIX", json!({"cardToken": null})).await;
    let id = started["sessionId"].as_str().unwrap().to_owned();
    let charge = started["paymentData"]["chargeId"].as_str().unwrap().to_owned();
    w.fake.pay_pix(&charge); // the reconciler learns it and the session moves on
    cp.until("CHARGING").await;
    w.until(&id, "CHARGING", status_is("CHARGING")).await;
    json_of(w.app.post("/charge/stop", &w.token, &json!({"sessionId": id})).send().await.unwrap()).await;
    let done = w.until(&id, "COMPLETED", status_is("COMPLETED")).await;
    // 6 kWh: 2.00 + 9.00 = R$ 11.00 kept; R$ 39.00 of the PIX returned.
    assert_eq!(done["capturedCents"], 1100);
    let refund = w.fake.seen_at("DELETE", &format!("/charges/{charge}"));
    assert_eq!(refund.len(), 1);
    assert_eq!(refund[0].body["amount"], 3900);
    cp.result().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_adhoc_charge_from_start_to_settlement_and_a_refund_that_fails_twice(pool: PgPool) {
    let w = world(pool).await;
    let body = json!({"stationId": 77, "connectorId": 2, "method": "CREDIT_CARD", "amount": 3000, "email": "fleet@company.com",
                      "cardToken": "tok_ok", "charger": {"price": 2, "fixed_connection_cost": 0}});
    let (status, started) = json_of(w.app.post("/v1/adhoc-charges/start", &w.token, &body).send().await.unwrap()).await;
    assert_eq!(status, 200, "{started}");
    let id = started["sessionId"].as_str().unwrap().to_owned();
    let (_, p1) = json_of(
        w.app
            .put(&format!("/v1/adhoc-charges/{id}/progress"), &w.token, &json!({"energyWh": 3000}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((p1["status"].as_str(), p1["runningCostCents"].as_i64()), (Some("CHARGING"), Some(600)));
    let (_, done) = json_of(
        w.app
            .post(&format!("/v1/adhoc-charges/{id}/complete"), &w.token, &json!({"energyWh": 5250}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["capturedCents"].as_i64(), done["releasedCents"].as_i64()),
        (Some("COMPLETED"), Some(1050), Some(1950))
    );
    let (_, got) = json_of(w.app.get(&format!("/v1/adhoc-charges/{id}"), &w.token).send().await.unwrap()).await;
    assert_eq!(got["kind"], "adhoc");
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = json_of(w.app.get("/v1/adhoc-charges?stationId=77", &w.token).send().await.unwrap()).await.1;
        if listed["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(listed["data"][0]["id"], json!(id));

    // The refund worker: the gateway fails twice, then succeeds; exactly one refund.
    let charge = sqlx::query_scalar::<_, String>(
        "SELECT payload->>'chargeId' FROM events WHERE event_type = 'payment_intent.authorized'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    w.fake.fail_next("DELETE", &format!("/charges/{charge}"), 2);
    let (status, queued) = json_of(
        w.app
            .post(&format!("/v1/charge-sessions/{id}/refunds"), &w.token, &json!({"amount": 400}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let refunded = w.until(&id, "refunded", |s| s["refundedCents"] == 400).await;
    assert_eq!(refunded["refundDeadLettered"], false);
    let attempts = w.fake.seen_at("DELETE", &format!("/charges/{charge}"));
    assert_eq!(attempts.len(), 3, "two failures, one success");
    assert!(attempts.windows(2).all(|a| a[0].idempotency_key == a[1].idempotency_key), "the same refund, retried");
    assert_eq!(w.fake.charge(&charge)["canceled_amount"], 400, "refunded once");
    assert_eq!(w.count("SELECT count(*) FROM events WHERE event_type = 'charge_session.refund_failed'").await, 2);

    // A gateway that never recovers: after the last attempt of the schedule the
    // refund is dead-lettered, visible through the API and in the metrics.
    w.fake.fail_next("DELETE", &format!("/charges/{charge}"), 1000);
    let (status, _) = json_of(
        w.app
            .post(&format!("/v1/charge-sessions/{id}/refunds"), &w.token, &json!({"amount": 100}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202);
    let dead = w.until(&id, "dead-lettered", |s| s["refundDeadLettered"] == true).await;
    assert_eq!(dead["refundedCents"], 400, "nothing more was refunded");
    assert_eq!(w.fake.charge(&charge)["canceled_amount"], 400);
    // The first attempt and the 7 retries of the schedule, each an event; the last one's is the dead letter.
    assert_eq!(w.count("SELECT count(*) FROM events WHERE event_type = 'charge_session.refund_failed'").await, 2 + 7);
    assert_eq!(
        w.count("SELECT count(*) FROM events WHERE event_type = 'charge_session.refund_dead_lettered'").await,
        1
    );
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = w.app.client.get(w.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.contains("chargeledger_session_queue_items{queue=\"refund\",state=\"dead_lettered\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        metrics.contains("chargeledger_session_queue_items{queue=\"refund\",state=\"dead_lettered\"} 1"),
        "{metrics}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_restart_between_stop_and_capture_and_between_capture_and_receipt_loses_and_repeats_nothing(pool: PgPool) {
    let w = world(pool.clone()).await;
    // The gateway fails the capture and the SMTP sink is down when the session stops.
    let body = json!({"stationId": 5, "connectorId": 1, "method": "CREDIT_CARD", "amount": 4000, "email": "late@company.com",
                      "cardToken": "tok_ok", "charger": {"price": 1, "fixed_connection_cost": 1}});
    let (_, started) = json_of(w.app.post("/v1/adhoc-charges/start", &w.token, &body).send().await.unwrap()).await;
    let id = started["sessionId"].as_str().unwrap().to_owned();
    let charge = sqlx::query_scalar::<_, String>(
        "SELECT payload->>'chargeId' FROM events WHERE event_type = 'payment_intent.authorized'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    w.fake.fail_next("POST", &format!("/charges/{charge}/capture"), 1000);
    let (_, stopped) = json_of(
        w.app
            .post(&format!("/v1/adhoc-charges/{id}/complete"), &w.token, &json!({"energyWh": 2000}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stopped["status"], "SETTLING", "stopped, not captured: {stopped}");
    // The process dies here.
    let World { app, fake, mut smtp, token, config, .. } = w;
    app.running.stop().await;
    smtp.stop().await;

    // A new process: the gateway answers again; the capture happens once.
    fake.clear_failures();
    let app = TestApp::start_with(config.clone(), pool.clone()).await;
    let w2 = World { app, fake, smtp, token, base: String::new(), config: config.clone(), pool: pool.clone() };
    let completed = w2.until(&id, "COMPLETED", status_is("COMPLETED")).await;
    assert_eq!(completed["capturedCents"], 300);
    assert_eq!(w2.count("SELECT count(*) FROM events WHERE event_type = 'payment_intent.captured'").await, 1);
    assert_eq!(w2.fake.charge(&charge)["paid_amount"], 300);
    // SMTP is still down: the receipt waits. The process dies again, between capture and receipt.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w2.session(&id).await["receiptSent"], false);
    let World { app, fake, mut smtp, token, .. } = w2;
    app.running.stop().await;
    smtp.start().await;
    let app = TestApp::start_with(config.clone(), pool.clone()).await;
    let w3 = World { app, fake, smtp, token, base: String::new(), config, pool };
    w3.until(&id, "receipt sent", |s| s["receiptSent"] == true).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w3.smtp.messages().len(), 1, "exactly one receipt");
    assert_eq!(w3.count("SELECT count(*) FROM events WHERE event_type = 'charge_session.receipt_sent'").await, 1);
    assert!(w3.count("SELECT count(*) FROM events WHERE event_type = 'charge_session.receipt_failed'").await >= 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_charger_that_accepts_but_never_starts_is_given_up_and_the_payment_voided(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S7", "1.6").await;
    let cp = w.ready_charger("EVSE-S7", "idle", 0).await;
    let (status, started) = w.start("EVSE-S7", "CREDIT_CARD", json!({})).await;
    assert_eq!(status, 200, "{started}");
    let id = started["sessionId"].as_str().unwrap();
    // Accepted, but no StartTransaction within the configured 3 s.
    let canceled =
        w.until(id, "CANCELED and voided", |s| s["status"] == "CANCELED" && s["paymentStatus"] == "canceled").await;
    assert_eq!(
        (canceled["stopReason"].as_str(), canceled["paymentStatus"].as_str()),
        (Some("start_timeout"), Some("canceled"))
    );
    assert_eq!(w.fake.seen_at("DELETE", "/charges/").len(), 1, "voided once");
    assert_eq!(w.fake.seen_at("POST", "/capture").len(), 0);
    drop(cp);
}

#[sqlx::test(migrations = "../migrations")]
async fn sessions_are_company_scoped_and_listed_with_a_cursor(pool: PgPool) {
    let w = world(pool).await;
    let mut ids = Vec::new();
    for station in [91, 91, 91, 92] {
        let body = json!({"stationId": station, "connectorId": 1, "method": "CREDIT_CARD", "amount": 1000,
                          "email": "a@company.com", "cardToken": "tok_ok", "charger": {"price": 1, "fixed_connection_cost": 0}});
        let (status, started) =
            json_of(w.app.post("/v1/adhoc-charges/start", &w.token, &body).send().await.unwrap()).await;
        assert_eq!(status, 200, "{started}");
        ids.push(started["sessionId"].as_str().unwrap().to_owned());
    }
    // Pages of two over station 91 reach every session once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("/v1/adhoc-charges?stationId=91&limit=2&cursor={c}"),
            None => "/v1/adhoc-charges?stationId=91&limit=2".to_owned(),
        };
        let (status, page) = json_of(w.app.get(&url, &w.token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        if cursor.is_none() && data.len() < 2 {
            tokio::time::sleep(Duration::from_millis(30)).await; // the read model catches up
            continue;
        }
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    let mut expected = ids[..3].to_vec();
    expected.sort();
    assert_eq!(seen, expected);
    let (status, bad) = json_of(w.app.get("/v1/adhoc-charges?cursor=nope", &w.token).send().await.unwrap()).await;
    assert_eq!(status, 422, "{bad}");

    // Another company sees none of it and can change none of it.
    let other = w.app.token(Uuid::new_v4(), Role::Operator);
    let id = &ids[0];
    for url in [
        format!("/v1/charge-sessions/{id}"),
        format!("/v1/adhoc-charges/{id}"),
        format!("/v1/charge-sessions/{id}/events"),
    ] {
        assert_eq!(w.app.get(&url, &other).send().await.unwrap().status(), 404, "{url}");
    }
    let (_, listed) = json_of(w.app.get("/v1/adhoc-charges", &other).send().await.unwrap()).await;
    assert_eq!(listed["data"], json!([]));
    assert_eq!(w.app.post("/charge/stop", &other, &json!({"sessionId": id})).send().await.unwrap().status(), 404);
    assert_eq!(
        w.app
            .post(&format!("/v1/adhoc-charges/{id}/complete"), &other, &json!({"energyWh": 10}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        w.app
            .put(&format!("/v1/adhoc-charges/{id}/progress"), &other, &json!({"energyWh": 10}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(w.session(id).await["status"], "AUTHORIZED", "untouched by the other company");
    assert_eq!(w.count("SELECT count(*) FROM events WHERE event_type = 'charge_session.charging_started'").await, 0);
}
