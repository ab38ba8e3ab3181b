//! OCPP transactions belong to chargers: 1.6 transaction ids count per charger,
//! so every charger's first transaction is `1`. Sessions on several chargers
//! (in one company and in two) charging at once, every one with transaction
//! id 1, each record their own energy and capture exactly their own cost.
//! Real `ocpp` 1.6 charge points, the local Pagar.me fake.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, pagarme::FakePagarme, *};
use uuid::Uuid;

#[path = "transactions/budget.rs"]
mod budget;

struct World {
    app: TestApp,
    fake: FakePagarme,
    base: String,
    pool: PgPool,
}

async fn world(pool: PgPool) -> World {
    let (fake, url) = FakePagarme::start().await;
    let mut c = test_config(&pool);
    c.payments.gateway = "pagarme".into();
    c.payments.pagarme_base_url = url;
    c.payments.pagarme_secret_key = Some(support::pagarme::SECRET_KEY.to_owned().into());
    c.payments.pagarme_timeout = Duration::from_millis(800);
    c.payments.reconcile_interval = Duration::from_millis(100);
    c.sessions.retry_schedule = vec![Duration::from_millis(100); 7];
    c.sessions.start_timeout = Duration::from_secs(20);
    let app = TestApp::start_with(c, pool.clone()).await;
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    World { app, fake, base, pool }
}

/// A charger of a company, with the operator token of that company.
struct Charger {
    id: &'static str,
    station: i64,
    token: String,
}

impl World {
    fn company(&self) -> String {
        self.app.token(Uuid::new_v4(), Role::Operator)
    }

    async fn register(&self, id: &'static str, station: i64, token: &str) -> Charger {
        self.register_as(id, station, token, "1.6").await
    }

    async fn register_as(&self, id: &'static str, station: i64, token: &str, version: &str) -> Charger {
        let mut body = terminal(id, station);
        body["ocppVersion"] = json!(version);
        let (status, body) = json_of(self.app.post("/v1/terminals", token, &body).send().await.unwrap()).await;
        assert_eq!(status, 201, "{body}");
        Charger { id, station, token: token.to_owned() }
    }

    /// Connects a `session16` charge point that stops at `meter_stop` Wh (its meter starts at 1000).
    async fn connect(&self, c: &Charger, meter_stop: i64) -> Cp {
        let mut cp = Cp::spawn("session16", &self.base, c.id, PASSWORD, &["normal", &meter_stop.to_string(), "60"]);
        cp.until("READY").await;
        cp
    }

    /// Starts a card session on `c` (retrying while the read model has not yet seen it online).
    async fn start(&self, c: &Charger) -> (String, String) {
        self.start_authorizing(c, 5000).await
    }

    /// [`World::start`], pre-authorizing `amount` cents.
    async fn start_authorizing(&self, c: &Charger, amount: i64) -> (String, String) {
        let body = json!({
            "stationId": c.station, "chargePointId": c.id, "connectorId": 1, "method": "CREDIT_CARD", "amount": amount,
            "email": "driver@company.com", "cpf": "12345678909", "cardToken": "tok_ok",
            "charger": {"price": 1.50, "fixed_connection_cost": 2.00}
        });
        for _ in 0..200 {
            let (status, started) =
                json_of(self.app.post("/charge/start", &c.token, &body).send().await.unwrap()).await;
            if status == 409 {
                tokio::time::sleep(Duration::from_millis(25)).await;
                continue;
            }
            assert_eq!(status, 200, "{started}");
            let charge = started["paymentData"]["chargeId"].as_str().unwrap().to_owned();
            return (started["sessionId"].as_str().unwrap().to_owned(), charge);
        }
        panic!("{} never came online", c.id);
    }

    async fn session(&self, c: &Charger, id: &str) -> Value {
        json_of(self.app.get(&format!("/v1/charge-sessions/{id}"), &c.token).send().await.unwrap()).await.1
    }

    async fn until(&self, c: &Charger, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..400 {
            last = self.session(c, id).await;
            if done(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the session on {} never became {what}: {last}", c.id);
    }

    async fn stop(&self, c: &Charger, id: &str) {
        let (status, body) =
            json_of(self.app.post("/charge/stop", &c.token, &json!({"sessionId": id})).send().await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
    }

    /// The capture amounts the gateway saw for a charge.
    fn captures(&self, charge: &str) -> Vec<i64> {
        self.fake
            .seen_at("POST", &format!("/charges/{charge}/capture"))
            .iter()
            .map(|s| s.body["amount"].as_i64().unwrap())
            .collect()
    }

    /// Transaction ids the chargers were given, by charger.
    async fn transaction_ids(&self, c: &Charger) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT payload->>'transactionId' FROM events WHERE stream_id = $1 \
             AND event_type = 'charger.transaction_started' ORDER BY position",
        )
        .bind(format!("charger-{}", c.id))
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Final energies recorded on a session's own stream.
    async fn stopped_energies(&self, id: &str) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT (payload->>'energyWh')::bigint FROM events WHERE stream_id = $1 \
             AND event_type = 'charge_session.charging_stopped' ORDER BY position",
        )
        .bind(format!("charge_session-{id}"))
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

/// 2.00 + 1.50 × kWh, in cents (every energy below gives whole cents).
fn cost(energy_wh: i64) -> i64 {
    200 + energy_wh * 150 / 1000
}

#[sqlx::test(migrations = "../migrations")]
async fn chargers_in_one_and_in_two_companies_all_with_transaction_1_settle_their_own_sessions(pool: PgPool) {
    let w = world(pool).await;
    let (one, two) = (w.company(), w.company());
    let chargers = [
        w.register("TX-A1", 11, &one).await,
        w.register("TX-A2", 12, &one).await,
        w.register("TX-B1", 21, &two).await,
        w.register("TX-B2", 22, &two).await,
    ];
    // Delivered energy per charger: every one different, all above the 4000 Wh
    // the charge points report while charging.
    let energies = [4_500, 6_000, 7_200, 10_000];
    let mut cps = Vec::new();
    for (c, e) in chargers.iter().zip(energies) {
        cps.push(w.connect(c, 1_000 + e).await);
    }
    let mut sessions = Vec::new();
    for c in &chargers {
        sessions.push(w.start(c).await);
    }
    // All charging at the same time, each with transaction 1.
    for cp in &mut cps {
        cp.until("CHARGING").await;
    }
    for (c, (id, _)) in chargers.iter().zip(&sessions) {
        let s = w.until(c, id, "CHARGING with 4000 Wh", |s| s["status"] == "CHARGING" && s["energyWh"] == 4000).await;
        assert_eq!((s["transactionId"].as_str(), s["runningCostCents"].as_i64()), (Some("1"), Some(800)), "{s}");
    }
    for c in &chargers {
        assert_eq!(w.transaction_ids(c).await, vec!["1"], "every charger's first transaction is 1");
    }
    for (c, (id, _)) in chargers.iter().zip(&sessions) {
        w.stop(c, id).await;
    }
    for ((c, (id, charge)), e) in chargers.iter().zip(&sessions).zip(energies) {
        let done = w.until(c, id, "COMPLETED", |s| s["status"] == "COMPLETED").await;
        assert_eq!(
            (done["energyWh"].as_i64(), done["capturedCents"].as_i64(), done["releasedCents"].as_i64()),
            (Some(e), Some(cost(e)), Some(5000 - cost(e))),
            "{}: {done}",
            c.id
        );
        assert_eq!(w.captures(charge), vec![cost(e)], "{} captures exactly its own cost, once", c.id);
        assert_eq!(w.stopped_energies(id).await, vec![e], "nothing from another charger reached {}", c.id);
    }
    for cp in cps {
        assert_eq!(cp.result().await["seen"], json!(["RemoteStartTransaction", "RemoteStopTransaction"]));
    }
    // Another company's session is not even visible.
    let (status, _) =
        json_of(w.app.get(&format!("/v1/charge-sessions/{}", sessions[0].0), &chargers[2].token).send().await.unwrap())
            .await;
    assert_eq!(status, 404);
    assert!(w.fake.problems().is_empty(), "{:?}", w.fake.problems());
    assert_log_verifies(&w.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_driver_charging_twice_on_one_charger_settles_both_sessions(pool: PgPool) {
    let w = world(pool).await;
    let company = w.company();
    // Two chargers, so that each second transaction id (2) also exists twice.
    let chargers = [w.register("TX-C1", 31, &company).await, w.register("TX-C2", 32, &company).await];
    for (round, energies) in [[4_500, 6_000], [7_200, 10_000]].into_iter().enumerate() {
        let mut cps = Vec::new();
        for (c, e) in chargers.iter().zip(energies) {
            cps.push(w.connect(c, 1_000 + e).await);
        }
        let mut sessions = Vec::new();
        for c in &chargers {
            sessions.push(w.start(c).await);
        }
        for cp in &mut cps {
            cp.until("CHARGING").await;
        }
        for (c, (id, _)) in chargers.iter().zip(&sessions) {
            w.until(c, id, "CHARGING", |s| s["status"] == "CHARGING" && s["energyWh"] == 4000).await;
            w.stop(c, id).await;
        }
        for ((c, (id, charge)), e) in chargers.iter().zip(&sessions).zip(energies) {
            let done = w.until(c, id, "COMPLETED", |s| s["status"] == "COMPLETED").await;
            assert_eq!(
                (done["transactionId"].as_str(), done["energyWh"].as_i64(), done["capturedCents"].as_i64()),
                (Some((round + 1).to_string().as_str()), Some(e), Some(cost(e))),
                "round {round} on {}: {done}",
                c.id
            );
            assert_eq!(w.captures(charge), vec![cost(e)]);
        }
        for cp in cps {
            cp.result().await;
        }
    }
    for c in &chargers {
        assert_eq!(w.transaction_ids(c).await, vec!["1", "2"]);
    }
    assert_log_verifies(&w.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_201_chargers_sending_the_same_transaction_id_settle_their_own_sessions(pool: PgPool) {
    let w = world(pool).await;
    let (one, two) = (w.company(), w.company());
    let chargers = [w.register_as("TX-D1", 41, &one, "2.0.1").await, w.register_as("TX-D2", 42, &two, "2.0.1").await];
    // Both charge points name their transaction "tx-session-201"; their meters start at 500 Wh.
    let energies = [3_000, 4_400];
    let mut cps = Vec::new();
    for (c, e) in chargers.iter().zip(energies) {
        let mut cp = Cp::spawn("session201", &w.base, c.id, PASSWORD, &[&(500 + e).to_string(), "60"]);
        cp.until("READY").await;
        cps.push(cp);
    }
    let mut sessions = Vec::new();
    for c in &chargers {
        sessions.push(w.start(c).await);
    }
    for cp in &mut cps {
        cp.until("CHARGING").await;
    }
    for (c, (id, _)) in chargers.iter().zip(&sessions) {
        let s = w.until(c, id, "CHARGING with 2000 Wh", |s| s["status"] == "CHARGING" && s["energyWh"] == 2000).await;
        assert_eq!(s["transactionId"], "tx-session-201", "{s}");
        w.stop(c, id).await;
    }
    for ((c, (id, charge)), e) in chargers.iter().zip(&sessions).zip(energies) {
        let done = w.until(c, id, "COMPLETED", |s| s["status"] == "COMPLETED").await;
        assert_eq!((done["energyWh"].as_i64(), done["capturedCents"].as_i64()), (Some(e), Some(cost(e))), "{done}");
        assert_eq!(w.captures(charge), vec![cost(e)]);
        assert_eq!(w.stopped_energies(id).await, vec![e]);
    }
    for cp in cps {
        assert_eq!(cp.result().await["seen"], json!(["RequestStartTransaction", "RequestStopTransaction"]));
    }
    assert_log_verifies(&w.app.running.state.store).await;
}
