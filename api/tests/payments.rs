//! Payment intents against a local fake of the Pagar.me V5 API.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use base64::Engine;
use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{pagarme::FakePagarme, *};
use uuid::Uuid;

#[path = "payments/cards.rs"]
mod cards;
#[path = "payments/intents.rs"]
mod intents;

struct Pay {
    app: TestApp,
    fake: FakePagarme,
    token: String,
}

async fn setup(pool: PgPool) -> Pay {
    let (fake, url) = FakePagarme::start().await;
    let mut config = test_config(&pool);
    config.payments.gateway = "pagarme".into();
    config.payments.pagarme_base_url = url;
    config.payments.pagarme_secret_key = Some(support::pagarme::SECRET_KEY.to_owned().into());
    config.payments.pagarme_timeout = Duration::from_millis(500);
    config.payments.reconcile_interval = Duration::from_millis(100);
    config.payments.webhook_public_keys_pem = Some(include_str!("fixtures/rs256-public.pem").into());
    let app = TestApp::start_with(config, pool).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    Pay { app, fake, token }
}

impl Pay {
    async fn create(&self, method: &str, amount: i64) -> Value {
        let body = json!({"amount": amount, "method": method, "customer": {"customerId": "cust-1", "name": "Ana", "email": "ana@example.com", "cpf": "529.982.247-25"}});
        let (status, intent) =
            json_of(self.app.post("/v1/payment-intents", &self.token, &body).send().await.unwrap()).await;
        assert_eq!(status, 201, "{intent}");
        assert_eq!(intent["status"], "requires_authorization");
        intent
    }

    async fn op(&self, id: &Value, op: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/payment-intents/{}/{op}", id.as_str().unwrap());
        json_of(self.app.post(&path, &self.token, &body).send().await.unwrap()).await
    }

    async fn get(&self, id: &Value) -> Value {
        json_of(
            self.app.get(&format!("/v1/payment-intents/{}", id.as_str().unwrap()), &self.token).send().await.unwrap(),
        )
        .await
        .1
    }

    async fn events(&self, id: &Value) -> Vec<String> {
        let (_, events) = json_of(
            self.app
                .get(&format!("/v1/payment-intents/{}/events", id.as_str().unwrap()), &self.token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        events.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    }

    fn clean(&self) {
        assert!(self.fake.problems().is_empty(), "requests Pagar.me would refuse: {:?}", self.fake.problems());
    }
}

fn sign(body: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("fixtures/rs256-private.pem")).unwrap();
    let url_safe = jsonwebtoken::crypto::sign(body.as_bytes(), &key, jsonwebtoken::Algorithm::RS256).unwrap();
    base64::engine::general_purpose::STANDARD
        .encode(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(url_safe).unwrap())
}

async fn webhook(p: &Pay, body: &str, signature: &str) -> (u16, Value) {
    let response = p
        .app
        .client
        .post(p.app.url("/v1/gateways/pagarme/webhooks"))
        .header("content-type", "application/json")
        .header("x-webhook-asymmetric-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    json_of(response).await
}

#[sqlx::test(migrations = "../migrations")]
async fn pix_is_authorized_by_a_signed_webhook_and_a_smaller_capture_refunds_the_rest(pool: PgPool) {
    let p = setup(pool).await;
    let intent = p.create("PIX", 5000).await;
    let (status, waiting) = p.op(&intent["id"], "authorize", json!({})).await;
    assert_eq!((status, waiting["status"].as_str()), (200, Some("processing")), "{waiting}");
    assert!(waiting["pix"]["qrCode"].as_str().unwrap().starts_with("000201"));
    assert!(waiting["pix"]["expiresAt"].is_string());
    assert_eq!(p.fake.seen_at("POST", "/orders")[0].body["payments"][0]["pix"]["expires_in"], 1800);
    let charge = waiting["chargeId"].as_str().unwrap().to_owned();

    // A forged webhook changes nothing.
    p.fake.pay_pix(&charge);
    let body = json!({"id": "hook_paid_1", "type": "charge.paid", "created_at": "2026-11-21T12:07:00Z", "data": {"id": charge, "status": "paid"}}).to_string();
    let before = p.events(&intent["id"]).await.len();
    let (status, _) = webhook(&p, &body, &sign("a different body")).await;
    assert_eq!(status, 401);
    let (status, _) = webhook(&p, &body, "not-base64!").await;
    assert_eq!(status, 401);
    assert_eq!(p.events(&intent["id"]).await.len(), before);
    assert_eq!(p.get(&intent["id"]).await["status"], "processing");

    // The real one: recorded, the charge re-fetched, the intent authorized; a repeat is recorded once.
    let (status, received) = webhook(&p, &body, &sign(&body)).await;
    assert_eq!((status, received["status"].as_str()), (200, Some("requires_capture")), "{received}");
    webhook(&p, &body, &sign(&body)).await;
    let events = p.events(&intent["id"]).await;
    assert_eq!(events.iter().filter(|e| *e == "payment_intent.webhook_received").count(), 1);
    assert!(!p.fake.seen_at("GET", &format!("/charges/{charge}")).is_empty(), "re-fetched before acting");

    let (status, captured) = p.op(&intent["id"], "capture", json!({"amount": 3200})).await;
    assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
    assert_eq!(
        (captured["amountCaptured"].as_i64(), captured["amountRefunded"].as_i64(), captured["amountReleased"].as_i64()),
        (Some(3200), Some(1800), Some(0))
    );
    let refund = p.fake.seen_at("DELETE", &format!("/charges/{charge}"));
    assert_eq!(refund[0].body["amount"], 1800, "PIX cannot be held: the difference is refunded");
    p.clean();
}

#[sqlx::test(migrations = "../migrations")]
async fn wallets_hold_capture_and_release_and_never_go_negative(pool: PgPool) {
    let p = setup(pool).await;
    let (status, top_up) = json_of(
        p.app
            .post(
                "/v1/wallets/cust-1/top-ups",
                &p.token,
                &json!({"amount": 10000, "method": "CREDIT_CARD", "cardToken": "tok_ok"}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, top_up["status"].as_str()), (201, Some("succeeded")), "{top_up}");
    let balance = |v: &Value| (v["balance"].as_i64(), v["held"].as_i64(), v["available"].as_i64());
    let wallet = json_of(p.app.get("/v1/wallets/cust-1", &p.token).send().await.unwrap()).await.1;
    assert_eq!(balance(&wallet), (Some(10000), Some(0), Some(10000)));

    let a = p.create("WALLET", 6000).await;
    let (status, held) = p.op(&a["id"], "authorize", json!({})).await;
    assert_eq!((status, held["status"].as_str()), (200, Some("requires_capture")));
    let b = p.create("WALLET", 4500).await;
    let (status, refused) = p.op(&b["id"], "authorize", json!({})).await;
    assert_eq!(status, 402, "{refused}");
    assert_eq!(refused["paymentIntent"]["lastError"]["code"], "insufficient_funds");
    let (_, captured) = p.op(&a["id"], "capture", json!({"amount": 2500})).await;
    assert_eq!((captured["amountCaptured"].as_i64(), captured["amountReleased"].as_i64()), (Some(2500), Some(3500)));
    let wallet = json_of(p.app.get("/v1/wallets/cust-1", &p.token).send().await.unwrap()).await.1;
    assert_eq!(balance(&wallet), (Some(7500), Some(0), Some(7500)));
    let c = p.create("WALLET", 7500).await;
    p.op(&c["id"], "authorize", json!({})).await;
    let (_, voided) = p.op(&c["id"], "void", json!({})).await;
    assert_eq!(voided["status"], "canceled");
    let wallet = json_of(p.app.get("/v1/wallets/cust-1", &p.token).send().await.unwrap()).await.1;
    assert_eq!(balance(&wallet), (Some(7500), Some(0), Some(7500)));
    p.clean();
}

#[sqlx::test(migrations = "../migrations")]
async fn vip_is_sponsored_and_needs_no_gateway(pool: PgPool) {
    let p = setup(pool).await;
    let intent = p.create("VIP", 5000).await;
    let (_, held) = p.op(&intent["id"], "authorize", json!({})).await;
    assert_eq!((held["status"].as_str(), held["sponsored"].as_bool()), (Some("requires_capture"), Some(true)));
    let (_, captured) = p.op(&intent["id"], "capture", json!({"amount": 1234})).await;
    assert_eq!((captured["status"].as_str(), captured["amountCaptured"].as_i64()), (Some("succeeded"), Some(1234)));
    assert!(p.fake.seen().is_empty(), "no gateway call for VIP");
}
