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

#[path = "charge/adhoc.rs"]
mod adhoc;
#[path = "charge/refusals.rs"]
mod refusals;
#[path = "charge/sessions.rs"]
mod sessions;

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
