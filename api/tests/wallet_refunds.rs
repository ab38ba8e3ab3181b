//! Refunding a wallet top-up takes its credit back out of the wallet, in the
//! same append as the refund request; a refund of credit already spent or
//! held is refused before the gateway is called (local Pagar.me V5 fake).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{pagarme::FakePagarme, *};
use uuid::Uuid;

struct Pay {
    app: TestApp,
    fake: FakePagarme,
    fake_url: String,
    token: String,
    pool: PgPool,
}

async fn setup(pool: PgPool) -> Pay {
    let (fake, url) = FakePagarme::start().await;
    let mut config = test_config(&pool);
    config.payments.gateway = "pagarme".into();
    config.payments.pagarme_base_url = url.clone();
    config.payments.pagarme_secret_key = Some(support::pagarme::SECRET_KEY.to_owned().into());
    config.payments.pagarme_timeout = Duration::from_millis(500);
    config.payments.reconcile_interval = Duration::from_millis(100);
    let app = TestApp::start_with(config, pool.clone()).await;
    let token = app.token(Uuid::new_v4(), Role::Operator);
    Pay { app, fake, fake_url: url, token, pool }
}

/// (balance, held, available)
type Balance = (i64, i64, i64);

impl Pay {
    async fn top_up(&self, customer: &str, amount: i64) -> Value {
        let body = json!({"amount": amount, "method": "CREDIT_CARD", "cardToken": "tok_ok"});
        let path = format!("/v1/wallets/{customer}/top-ups");
        let (status, intent) = json_of(self.app.post(&path, &self.token, &body).send().await.unwrap()).await;
        assert_eq!((status, intent["status"].as_str()), (201, Some("succeeded")), "{intent}");
        intent
    }

    async fn wallet(&self, customer: &str) -> Balance {
        let (status, w) =
            json_of(self.app.get(&format!("/v1/wallets/{customer}"), &self.token).send().await.unwrap()).await;
        assert_eq!(status, 200, "{w}");
        (w["balance"].as_i64().unwrap(), w["held"].as_i64().unwrap(), w["available"].as_i64().unwrap())
    }

    /// A WALLET intent of `customer`, authorized (held) and, when `capture`, captured.
    async fn spend(&self, customer: &str, amount: i64, capture: bool) -> Value {
        let body = json!({"amount": amount, "method": "WALLET", "customer": {"customerId": customer, "email": "ana@example.com"}});
        let (status, intent) =
            json_of(self.app.post("/v1/payment-intents", &self.token, &body).send().await.unwrap()).await;
        assert_eq!(status, 201, "{intent}");
        let (status, held) = self.op(&intent, "authorize", json!({})).await;
        assert_eq!((status, held["status"].as_str()), (200, Some("requires_capture")), "{held}");
        if !capture {
            return held;
        }
        let (status, captured) = self.op(&intent, "capture", json!({})).await;
        assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
        captured
    }

    async fn op(&self, intent: &Value, op: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/payment-intents/{}/{op}", intent["id"].as_str().unwrap());
        json_of(self.app.post(&path, &self.token, &body).send().await.unwrap()).await
    }

    async fn refund(&self, intent: &Value, amount: Option<i64>) -> (u16, Value) {
        let body = amount.map_or_else(|| json!({}), |a| json!({"amount": a}));
        self.op(intent, "refund", body).await
    }

    fn refund_calls(&self, intent: &Value) -> Vec<i64> {
        let charge = intent["chargeId"].as_str().unwrap();
        self.fake
            .seen_at("DELETE", &format!("/charges/{charge}"))
            .iter()
            .map(|s| s.body["amount"].as_i64().unwrap_or(-1))
            .collect()
    }

    /// (number of events, head position), leaving out the sealer's own
    /// `log.range_sealed` events (it seals ranges in the background).
    async fn log_head(&self) -> (i64, i64) {
        sqlx::query_as("SELECT count(*), COALESCE(max(position), 0) FROM events WHERE event_type NOT LIKE 'log.%'")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Writer transactions of the refund requests of `intent` and of the wallet debits for it.
    async fn appends(&self, intent: &Value) -> (Vec<i64>, Vec<i64>) {
        let id = intent["id"].as_str().unwrap();
        // position = (writer's transaction id << 16) + index inside it.
        let requests: Vec<i64> = sqlx::query_scalar(
            "SELECT position >> 16 FROM events WHERE stream_id = $1 AND event_type = 'payment_intent.operation_requested' \
             AND payload->>'operation' = 'refund' ORDER BY position",
        )
        .bind(format!("payment_intent-{id}"))
        .fetch_all(&self.pool)
        .await
        .unwrap();
        let debits: Vec<i64> = sqlx::query_scalar(
            "SELECT position >> 16 FROM events WHERE event_type = 'wallet.debited' AND payload->>'sourceIntentId' = $1 \
             ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .unwrap();
        (requests, debits)
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_full_refund_of_a_card_top_up_takes_the_credit_back(pool: PgPool) {
    let p = setup(pool).await;
    let top_up = p.top_up("cust-1", 10_000).await;
    assert_eq!(p.wallet("cust-1").await, (10_000, 0, 10_000));

    let (status, refunded) = p.refund(&top_up, None).await;
    assert_eq!((status, refunded["status"].as_str()), (200, Some("succeeded")), "{refunded}");
    assert_eq!(refunded["amountRefunded"], 10_000, "{refunded}");
    assert_eq!(p.refund_calls(&top_up), vec![10_000], "the card is refunded once, in full");
    assert_eq!(p.wallet("cust-1").await, (0, 0, 0), "the refunded credit is gone from the wallet");

    let (requests, debits) = p.appends(&top_up).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests, debits, "the debit is appended in the refund request's own transaction");

    let (status, again) = p.refund(&top_up, None).await;
    assert_eq!(status, 422, "nothing is left to refund: {again}");
    assert_eq!(p.wallet("cust-1").await, (0, 0, 0));
    assert_log_verifies(&p.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_partial_refund_debits_exactly_the_refunded_amount(pool: PgPool) {
    let p = setup(pool).await;
    let top_up = p.top_up("cust-2", 10_000).await;

    let (status, first) = p.refund(&top_up, Some(2_501)).await;
    assert_eq!((status, first["amountRefunded"].as_i64()), (200, Some(2_501)), "{first}");
    assert_eq!(p.wallet("cust-2").await, (7_499, 0, 7_499));

    let (status, second) = p.refund(&top_up, Some(1_000)).await;
    assert_eq!((status, second["amountRefunded"].as_i64()), (200, Some(3_501)), "{second}");
    assert_eq!(p.wallet("cust-2").await, (6_499, 0, 6_499));
    assert_eq!(p.refund_calls(&top_up), vec![2_501, 1_000]);
    let (requests, debits) = p.appends(&top_up).await;
    assert_eq!((requests.len(), &requests), (2, &debits), "each refund debits in its own request's append");
    assert_log_verifies(&p.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refund_of_credit_already_spent_or_held_is_refused_and_changes_nothing(pool: PgPool) {
    let p = setup(pool).await;
    let top_up = p.top_up("cust-3", 10_000).await;
    p.spend("cust-3", 6_000, true).await;
    assert_eq!(p.wallet("cust-3").await, (4_000, 0, 4_000));

    let before = p.log_head().await;
    let (status, refused) = p.refund(&top_up, Some(4_001)).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["type"], "urn:chargeledger:problem:conflict", "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("insufficient funds"), "{refused}");
    let (status, full) = p.refund(&top_up, None).await;
    assert_eq!(status, 409, "a full refund would take 10000 of 4000: {full}");
    assert_eq!(p.log_head().await, before, "a refused refund appends nothing");
    assert!(p.refund_calls(&top_up).is_empty(), "the gateway is never called");
    assert_eq!(p.wallet("cust-3").await, (4_000, 0, 4_000));
    let (_, intent) = json_of(
        p.app.get(&format!("/v1/payment-intents/{}", top_up["id"].as_str().unwrap()), &p.token).send().await.unwrap(),
    )
    .await;
    assert_eq!((intent["status"].as_str(), intent["amountRefunded"].as_i64()), (Some("succeeded"), Some(0)));

    // Held counts as spent while the hold lasts.
    let held = p.spend("cust-3", 1_500, false).await;
    assert_eq!(p.wallet("cust-3").await, (4_000, 1_500, 2_500));
    let before = p.log_head().await;
    let (status, refused) = p.refund(&top_up, Some(2_501)).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(p.log_head().await, before);
    assert!(p.refund_calls(&top_up).is_empty());

    // At the limit: exactly what is available.
    let (status, refunded) = p.refund(&top_up, Some(2_500)).await;
    assert_eq!((status, refunded["amountRefunded"].as_i64()), (200, Some(2_500)), "{refunded}");
    assert_eq!(p.wallet("cust-3").await, (1_500, 1_500, 0));
    let (status, released) = p.op(&held, "void", json!({})).await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(p.wallet("cust-3").await, (1_500, 0, 1_500));
    assert_log_verifies(&p.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_concurrent_refunds_of_one_top_up_cannot_spend_the_same_credit(pool: PgPool) {
    let p = setup(pool).await;
    let top_up = p.top_up("cust-4", 10_000).await;
    p.spend("cust-4", 5_000, true).await;

    let ((s1, b1), (s2, b2)) = tokio::join!(p.refund(&top_up, Some(3_000)), p.refund(&top_up, Some(3_000)));
    let mut statuses = vec![s1, s2];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409], "exactly one refund goes through: {b1} {b2}");
    assert_eq!(p.wallet("cust-4").await, (2_000, 0, 2_000));
    assert_eq!(p.refund_calls(&top_up), vec![3_000]);
    assert_log_verifies(&p.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_refunds_of_two_top_ups_are_decided_on_one_wallet(pool: PgPool) {
    let p = setup(pool).await;
    let a = p.top_up("cust-5", 5_000).await;
    let b = p.top_up("cust-5", 5_000).await;
    p.spend("cust-5", 6_000, true).await;
    assert_eq!(p.wallet("cust-5").await, (4_000, 0, 4_000));

    // Each fits alone (3000 of 4000); together they would take 6000.
    let ((s1, b1), (s2, b2)) = tokio::join!(p.refund(&a, Some(3_000)), p.refund(&b, Some(3_000)));
    let mut statuses = vec![s1, s2];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409], "{b1} {b2}");
    let refused = if s1 == 409 { &b1 } else { &b2 };
    assert!(refused["detail"].as_str().unwrap().contains("insufficient funds"), "{refused}");
    assert_eq!(p.wallet("cust-5").await, (1_000, 0, 1_000));
    assert_eq!(p.refund_calls(&a).len() + p.refund_calls(&b).len(), 1, "one card refund only");
    assert_log_verifies(&p.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_credit_is_out_of_reach_while_the_refund_outcome_is_unknown(pool: PgPool) {
    let p = setup(pool).await;
    let top_up = p.top_up("cust-6", 10_000).await;
    let charge = top_up["chargeId"].as_str().unwrap().to_owned();
    p.fake.fail_next("DELETE", &format!("/charges/{charge}"), 1);

    let (status, pending) = p.refund(&top_up, Some(4_000)).await;
    assert_eq!((status, pending["status"].as_str()), (202, Some("processing")), "{pending}");
    assert_eq!(p.wallet("cust-6").await, (6_000, 0, 6_000), "debited at the request, before the outcome is known");
    // Spending the refunded part meanwhile is refused.
    let body =
        json!({"amount": 6_001, "method": "WALLET", "customer": {"customerId": "cust-6", "email": "ana@example.com"}});
    let (_, intent) = json_of(p.app.post("/v1/payment-intents", &p.token, &body).send().await.unwrap()).await;
    let (status, _) = p.op(&intent, "authorize", json!({})).await;
    assert_eq!(status, 402, "only 6000 is available");

    // The reconciler learns the refund went through (same key); the wallet stays debited once.
    let mut settled = Value::Null;
    for _ in 0..200 {
        settled = json_of(
            p.app
                .get(&format!("/v1/payment-intents/{}", top_up["id"].as_str().unwrap()), &p.token)
                .send()
                .await
                .unwrap(),
        )
        .await
        .1;
        if settled["status"] == "succeeded" && settled["amountRefunded"] == 4_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((settled["status"].as_str(), settled["amountRefunded"].as_i64()), (Some("succeeded"), Some(4_000)));
    assert_eq!(p.wallet("cust-6").await, (6_000, 0, 6_000));
    let (_, debits) = p.appends(&top_up).await;
    assert_eq!(debits.len(), 1);
    assert_log_verifies(&p.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refund_the_gateway_refuses_gives_the_debit_back(pool: PgPool) {
    let p = setup(pool).await;
    let top_up = p.top_up("cust-7", 10_000).await;
    let charge = top_up["chargeId"].as_str().unwrap().to_owned();
    // Someone refunds 7000 in the Pagar.me dashboard: only 3000 is left there.
    let outside = p
        .app
        .client
        .delete(format!("{}/charges/{charge}", p.fake_url))
        .basic_auth(support::pagarme::SECRET_KEY, Some(""))
        .header("Idempotency-Key", "dashboard-refund-1")
        .json(&json!({"amount": 7_000}))
        .send()
        .await
        .unwrap();
    assert!(outside.status().is_success(), "{}", outside.status());

    let (status, refused) = p.refund(&top_up, Some(5_000)).await;
    assert_eq!((status, refused["lastError"]["code"].as_str()), (200, Some("gateway_rejected")), "{refused}");
    assert_eq!(p.refund_calls(&top_up), vec![7_000, 5_000], "the dashboard's, then ours");
    assert_eq!(p.wallet("cust-7").await, (10_000, 0, 10_000), "the debit is given back with the failure");
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE event_type LIKE 'wallet.debit%' AND payload->>'sourceIntentId' = $1 ORDER BY position",
    )
    .bind(top_up["id"].as_str().unwrap())
    .fetch_all(&p.pool)
    .await
    .unwrap();
    assert_eq!(types, vec!["wallet.debited", "wallet.debit_reversed"]);
    let (_, intent) = json_of(
        p.app.get(&format!("/v1/payment-intents/{}", top_up["id"].as_str().unwrap()), &p.token).send().await.unwrap(),
    )
    .await;
    assert_eq!(
        (intent["status"].as_str(), intent["amountRefunded"].as_i64()),
        (Some("succeeded"), Some(0)),
        "{intent}"
    );
    assert_log_verifies(&p.app.running.state.store).await;
}
