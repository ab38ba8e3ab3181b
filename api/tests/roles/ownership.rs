//! Ownership (a driver sees only its own sessions, intents and wallet) and
//! the tariff a driver may not choose (issue 10, rules 2 and 3).

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::{log_size, support::*, token};
use chargeledger_api::auth::Role;

/// What a caller of the ownership tests sends and gets.
struct Owners {
    app: TestApp,
    pool: PgPool,
    operator: String,
    driver_a: String,
    driver_b: String,
    viewer: String,
    service: String,
}

async fn owners(pool: PgPool, trust_client_tariff: bool) -> Owners {
    let mut config = test_config(&pool);
    config.trust_client_tariff = trust_client_tariff;
    let app = TestApp::start_with(config, pool.clone()).await;
    let company = Uuid::new_v4();
    Owners {
        operator: token(&app, "ops", company, Role::Operator),
        driver_a: token(&app, "driver-a", company, Role::Driver),
        driver_b: token(&app, "driver-b", company, Role::Driver),
        viewer: token(&app, "auditor", company, Role::Viewer),
        service: token(&app, "cpms", company, Role::Service),
        app,
        pool,
    }
}

fn adhoc_body(customer: &str) -> Value {
    json!({"stationId": 77, "connectorId": 2, "method": "CREDIT_CARD", "amount": 3000, "email": "fleet@company.com",
           "cardToken": "tok_ok", "customerId": customer, "charger": {"price": 2, "fixed_connection_cost": 0}})
}

impl Owners {
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut builder = self.app.client.request(method, self.app.url(path)).bearer_auth(token);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        json_of(builder.send().await.unwrap()).await
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// `post`, asserting it is refused with `status` and appends nothing.
    async fn refused(&self, path: &str, token: &str, body: Value, status: u16) -> Value {
        let before = log_size(&self.pool).await;
        let (got, problem) = self.post(path, token, body).await;
        assert_eq!(got, status, "{path}: {problem}");
        assert_eq!(log_size(&self.pool).await, before, "{path}: a refused request appended events");
        problem
    }

    /// A card intent of `customer`, authorized (requires_capture).
    async fn authorized_intent(&self, customer: &str) -> String {
        let body = json!({"amount": 5000, "method": "CREDIT_CARD", "customer": {"customerId": customer}});
        let (status, intent) = self.post("/v1/payment-intents", &self.operator, body).await;
        assert_eq!(status, 201, "{intent}");
        let id = intent["id"].as_str().unwrap().to_owned();
        let (status, intent) = self
            .post(&format!("/v1/payment-intents/{id}/authorize"), &self.operator, json!({"cardToken": "tok_ok"}))
            .await;
        assert_eq!((status, intent["status"].as_str()), (200, Some("requires_capture")), "{intent}");
        id
    }

    /// Lists `path` as `token` until `id` shows up (the read model lags).
    async fn listed(&self, path: &str, token: &str, id: &str) -> Vec<String> {
        for _ in 0..200 {
            let (status, page) = self.get(path, token).await;
            assert_eq!(status, 200, "{page}");
            let ids: Vec<String> =
                page["data"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
            if ids.iter().any(|i| i == id) {
                return ids;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{id} never showed up in {path}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_driver_sees_only_its_own_intents_and_wallet_and_cannot_capture_void_refund_or_use_vip(pool: PgPool) {
    let o = owners(pool, false).await;
    let mine = o.authorized_intent("driver-b").await;
    let theirs = o.authorized_intent("driver-a").await;
    let nobodys = o.authorized_intent("walk-in").await;

    // Another driver's intent is not found (404, not 403).
    assert_eq!(o.get(&format!("/v1/payment-intents/{mine}"), &o.driver_a).await.0, 404);
    assert_eq!(o.get(&format!("/v1/payment-intents/{nobodys}"), &o.driver_a).await.0, 404);
    let (status, intent) = o.get(&format!("/v1/payment-intents/{mine}"), &o.driver_b).await;
    assert_eq!((status, intent["customer"]["customerId"].as_str()), (200, Some("driver-b")));
    // The same customer id in another company owns nothing here.
    let elsewhere = token(&o.app, "driver-b", Uuid::new_v4(), Role::Driver);
    assert_eq!(o.get(&format!("/v1/payment-intents/{mine}"), &elsewhere).await.0, 404);
    assert_eq!(o.get("/v1/wallets/driver-b", &elsewhere).await.1["balance"], 0);
    let problem = o
        .refused(&format!("/v1/payment-intents/{mine}/authorize"), &o.driver_a, json!({"cardToken": "tok_ok"}), 404)
        .await;
    assert_eq!(problem["type"], "urn:chargeledger:problem:not-found");

    // The 1-cent capture of its own intent, a void, a refund: 403, nothing appended.
    for op in ["capture", "void", "refund"] {
        let body = if op == "void" { json!({}) } else { json!({"amount": 1}) };
        o.refused(&format!("/v1/payment-intents/{mine}/{op}"), &o.driver_b, body.clone(), 403).await;
        o.refused(&format!("/v1/payment-intents/{mine}/{op}"), &o.viewer, body, 403).await;
    }
    let (_, intent) = o.get(&format!("/v1/payment-intents/{mine}"), &o.operator).await;
    assert_eq!((intent["status"].as_str(), intent["amountCaptured"].as_i64()), (Some("requires_capture"), Some(0)));

    // Lists hold only the driver's own intents, whatever customerId it asks for.
    let listed = o.listed("/v1/payment-intents", &o.driver_b, &mine).await;
    assert_eq!(listed, vec![mine.clone()]);
    o.listed("/v1/payment-intents", &o.operator, &nobodys).await;
    let (_, page) = o.get("/v1/payment-intents?customerId=driver-a", &o.driver_b).await;
    assert_eq!(page["data"], json!([]));
    assert_eq!(o.listed("/v1/payment-intents", &o.driver_a, &theirs).await, vec![theirs.clone()]);

    // A driver creates intents for itself only, never VIP.
    let body = json!({"amount": 2000, "method": "CREDIT_CARD", "customer": {"customerId": "driver-b"}});
    let (status, created) = o.post("/v1/payment-intents", &o.driver_a, body).await;
    assert_eq!((status, created["customer"]["customerId"].as_str()), (201, Some("driver-a")), "{created}");
    let own = created["id"].as_str().unwrap();
    let (status, authorized) =
        o.post(&format!("/v1/payment-intents/{own}/authorize"), &o.driver_a, json!({"cardToken": "tok_ok"})).await;
    assert_eq!((status, authorized["status"].as_str()), (200, Some("requires_capture")), "{authorized}");
    let vip = json!({"amount": 2000, "method": "VIP", "customer": {"customerId": "driver-a"}});
    o.refused("/v1/payment-intents", &o.driver_a, vip.clone(), 403).await;
    // An operator's VIP intent for the driver: the driver cannot authorize it.
    let (status, sponsored) = o.post("/v1/payment-intents", &o.operator, vip).await;
    assert_eq!(status, 201, "{sponsored}");
    let sponsored = sponsored["id"].as_str().unwrap();
    o.refused(&format!("/v1/payment-intents/{sponsored}/authorize"), &o.driver_a, json!({}), 403).await;

    // Wallets: its own only; top-ups of its own wallet by card.
    assert_eq!(o.get("/v1/wallets/driver-b", &o.driver_a).await.0, 404);
    o.refused(
        "/v1/wallets/driver-b/top-ups",
        &o.driver_a,
        json!({"amount": 1000, "method": "CREDIT_CARD", "cardToken": "tok_ok"}),
        404,
    )
    .await;
    let (status, top_up) = o
        .post(
            "/v1/wallets/driver-a/top-ups",
            &o.driver_a,
            json!({"amount": 1000, "method": "CREDIT_CARD", "cardToken": "tok_ok"}),
        )
        .await;
    assert_eq!((status, top_up["topUpWallet"].as_str()), (201, Some("driver-a")), "{top_up}");
    let (status, wallet) = o.get("/v1/wallets/driver-a", &o.driver_a).await;
    assert_eq!((status, wallet["balance"].as_i64()), (200, Some(1000)), "{wallet}");
    assert_eq!(o.get("/v1/wallets/driver-b", &o.operator).await.0, 200);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_driver_sees_and_stops_only_its_own_sessions_and_cannot_choose_the_price(pool: PgPool) {
    let o = owners(pool, false).await;
    // Started by the operator (or a CPMS) for driver B.
    let (status, started) = o.post("/v1/adhoc-charges/start", &o.operator, adhoc_body("driver-b")).await;
    assert_eq!(status, 200, "{started}");
    let id = started["sessionId"].as_str().unwrap().to_owned();
    let (status, other) = o.post("/v1/adhoc-charges/start", &o.service, adhoc_body("driver-a")).await;
    assert_eq!(status, 200, "{other}");
    let other = other["sessionId"].as_str().unwrap().to_owned();

    for path in [format!("/v1/charge-sessions/{id}"), format!("/v1/adhoc-charges/{id}")] {
        assert_eq!(o.get(&path, &o.driver_a).await.0, 404, "{path}");
        let (status, session) = o.get(&path, &o.driver_b).await;
        assert_eq!((status, session["sessionId"].as_str()), (200, Some(id.as_str())), "{path}");
    }
    o.refused("/charge/stop", &o.driver_a, json!({"sessionId": id}), 404).await;
    o.refused("/charge/stop", &o.viewer, json!({"sessionId": id}), 403).await;
    assert_eq!(o.listed("/v1/adhoc-charges", &o.driver_b, &id).await, vec![id.clone()]);
    assert_eq!(o.listed("/v1/adhoc-charges", &o.driver_a, &other).await, vec![other.clone()]);
    let everyone = o.listed("/v1/adhoc-charges", &o.operator, &id).await;
    assert!(everyone.contains(&other), "{everyone:?}");

    // Only an operator or the service reports energy.
    let before = log_size(&o.pool).await;
    let (status, _) = o
        .call(Method::PUT, &format!("/v1/adhoc-charges/{id}/progress"), &o.driver_b, Some(json!({"energyWh": 1})))
        .await;
    assert_eq!((status, log_size(&o.pool).await), (403, before));
    let (status, progress) = o
        .call(Method::PUT, &format!("/v1/adhoc-charges/{id}/progress"), &o.service, Some(json!({"energyWh": 3000})))
        .await;
    assert_eq!((status, progress["runningCostCents"].as_i64()), (200, Some(600)), "{progress}");

    // The driver's own stop goes through.
    let (status, stopped) = o.post("/charge/stop", &o.driver_b, json!({"sessionId": id})).await;
    assert_ne!(status, 403, "{stopped}");
    assert_ne!(status, 404, "{stopped}");

    // Rule 3: a driver cannot start with its own tariff (free or not), on either start.
    let zero = json!({"stationId": 77, "chargePointId": "EVSE-1", "connectorId": 1, "method": "CREDIT_CARD", "amount": 3000,
                      "email": "me@company.com", "cardToken": "tok_ok", "charger": {"price": 0, "fixed_connection_cost": 0}});
    let problem = o.refused("/charge/start", &o.driver_a, zero.clone(), 403).await;
    assert!(problem["detail"].as_str().unwrap().contains("CHARGELEDGER_TRUST_CLIENT_TARIFF"), "{problem}");
    o.refused("/v1/adhoc-charges/start", &o.driver_a, zero, 403).await;

    // A price or fixed cost below zero is a field error, for an operator too.
    for (path, mut body) in [
        ("/v1/adhoc-charges/start", adhoc_body("x")),
        (
            "/charge/start",
            json!({"stationId": 77, "chargePointId": "EVSE-1", "connectorId": 1, "method": "CREDIT_CARD",
                                 "amount": 3000, "email": "me@company.com", "cardToken": "tok_ok"}),
        ),
    ] {
        for (field, tariff) in [
            ("charger.price", json!({"price": -0.01, "fixed_connection_cost": 0})),
            ("charger.fixed_connection_cost", json!({"price": 1, "fixed_connection_cost": -1})),
        ] {
            body["charger"] = tariff;
            let problem = o.refused(path, &o.operator, body.clone(), 422).await;
            let fields: Vec<&str> =
                problem["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
            assert!(fields.contains(&field), "{path}: {problem}");
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn with_client_tariffs_trusted_a_driver_starts_its_own_session_but_never_vip(pool: PgPool) {
    let o = owners(pool, true).await;
    let (status, started) = o.post("/v1/adhoc-charges/start", &o.driver_a, adhoc_body("driver-b")).await;
    assert_eq!(status, 200, "{started}");
    let id = started["sessionId"].as_str().unwrap().to_owned();
    // The session and its payment are the driver's, whatever the body said.
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT payload->>'customerId' FROM events WHERE event_type = 'charge_session.started' AND schema_version = 2 \
         AND payload->>'sessionId' = $1",
    )
    .bind(&id)
    .fetch_one(&o.pool)
    .await
    .unwrap();
    assert_eq!(owner.as_deref(), Some("driver-a"));
    let (status, session) = o.get(&format!("/v1/charge-sessions/{id}"), &o.driver_a).await;
    assert_eq!(status, 200, "{session}");
    let intent = session["paymentIntentId"].as_str().unwrap();
    let (status, intent) = o.get(&format!("/v1/payment-intents/{intent}"), &o.driver_a).await;
    assert_eq!((status, intent["customer"]["customerId"].as_str()), (200, Some("driver-a")), "{intent}");
    assert_eq!(o.get(&format!("/v1/charge-sessions/{id}"), &o.driver_b).await.0, 404);

    let mut vip = adhoc_body("driver-a");
    vip["method"] = json!("VIP");
    o.refused("/v1/adhoc-charges/start", &o.driver_a, vip.clone(), 403).await;
    // A CPMS integration may start ad-hoc charges, but a free one is the operator's call.
    o.refused("/v1/adhoc-charges/start", &o.service, vip.clone(), 403).await;
    // The setting is about drivers: a viewer still cannot start anything.
    o.refused("/v1/adhoc-charges/start", &o.viewer, adhoc_body("x"), 403).await;
    let (status, _) = o.post("/v1/adhoc-charges/start", &o.operator, vip).await;
    assert_eq!(status, 200);
}
