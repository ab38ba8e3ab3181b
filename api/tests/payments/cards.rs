//! Card intents: pre-authorization and partial capture, full capture, void,
//! declines, and a gateway timeout left for the reconciler.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn a_card_is_pre_authorized_then_partially_captured(pool: PgPool) {
    let p = setup(pool).await;
    let intent = p.create("CREDIT_CARD", 5000).await;
    let (status, authorized) = p.op(&intent["id"], "authorize", json!({"cardToken": "tok_ok"})).await;
    assert_eq!((status, authorized["status"].as_str()), (200, Some("requires_capture")), "{authorized}");
    assert_eq!(authorized["amountCapturable"], 5000);
    let order = &p.fake.seen_at("POST", "/orders")[0];
    assert_eq!(order.body["payments"][0]["credit_card"]["capture"], false);
    assert_eq!(order.body["payments"][0]["amount"], 5000);
    assert_eq!(order.body["code"], intent["id"]);
    assert_eq!(
        order.idempotency_key.as_deref(),
        Some(format!("{}:authorize", intent["id"].as_str().unwrap()).as_str())
    );

    let (status, too_much) = p.op(&intent["id"], "capture", json!({"amount": 5001})).await;
    assert_eq!((status, too_much["type"].as_str()), (422, Some("urn:chargeledger:problem:validation-error")));
    let (status, captured) = p.op(&intent["id"], "capture", json!({"amount": 1837})).await;
    assert_eq!((status, captured["status"].as_str()), (200, Some("succeeded")), "{captured}");
    assert_eq!((captured["amountCaptured"].as_i64(), captured["amountReleased"].as_i64()), (Some(1837), Some(3163)));
    let capture = &p.fake.seen_at("POST", "/capture")[0];
    assert_eq!(capture.body["amount"], 1837, "the exact cents go to Pagar.me");
    assert_eq!(p.fake.charge(captured["chargeId"].as_str().unwrap())["paid_amount"], 1837);
    let events = p.events(&intent["id"]).await;
    assert_eq!(
        events.iter().filter(|e| *e == "payment_intent.gateway_exchanged").count(),
        2,
        "every request and response recorded"
    );
    let history = json_of(
        p.app
            .get(&format!("/v1/payment-intents/{}/events", intent["id"].as_str().unwrap()), &p.token)
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    assert!(!history.to_string().contains("tok_ok"), "card tokens are redacted from the log");
    p.clean();
}

#[sqlx::test(migrations = "../migrations")]
async fn full_capture_and_void_before_capture(pool: PgPool) {
    let p = setup(pool).await;
    let a = p.create("CREDIT_CARD", 3000).await;
    p.op(&a["id"], "authorize", json!({"cardToken": "tok_ok"})).await;
    let (status, captured) = p.op(&a["id"], "capture", json!({})).await;
    assert_eq!(
        (status, captured["amountCaptured"].as_i64(), captured["amountReleased"].as_i64()),
        (200, Some(3000), Some(0))
    );

    let b = p.create("CREDIT_CARD", 4000).await;
    p.op(&b["id"], "authorize", json!({"cardToken": "tok_ok"})).await;
    let (status, voided) = p.op(&b["id"], "void", json!({})).await;
    assert_eq!(
        (status, voided["status"].as_str(), voided["amountReleased"].as_i64()),
        (200, Some("canceled"), Some(4000))
    );
    let delete = p.fake.seen_at("DELETE", "/charges/");
    assert_eq!(delete.len(), 1);
    assert_eq!(delete[0].body, Value::Null, "a void cancels the whole charge");
    // A void before authorization needs no gateway call.
    let c = p.create("CREDIT_CARD", 1000).await;
    let (status, voided) = p.op(&c["id"], "void", json!({})).await;
    assert_eq!((status, voided["status"].as_str()), (200, Some("canceled")));
    assert_eq!(p.fake.seen_at("DELETE", "/charges/").len(), 1);
    p.clean();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_decline_fails_the_intent_with_the_reason(pool: PgPool) {
    let p = setup(pool).await;
    let intent = p.create("CREDIT_CARD", 5000).await;
    let (status, problem) = p.op(&intent["id"], "authorize", json!({"cardToken": "tok_decline"})).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (402, Some("urn:chargeledger:problem:payment-declined")),
        "{problem}"
    );
    assert_eq!(problem["paymentIntent"]["status"], "failed");
    assert_eq!(problem["paymentIntent"]["lastError"]["declineCode"], "51");
    let before = p.events(&intent["id"]).await.len();
    let (status, refused) = p.op(&intent["id"], "capture", json!({})).await;
    assert_eq!((status, refused["type"].as_str()), (409, Some("urn:chargeledger:problem:conflict")));
    assert_eq!(p.events(&intent["id"]).await.len(), before, "a refused command appends nothing");
    assert_eq!(p.fake.seen_at("POST", "/capture").len(), 0);
    p.clean();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_timeout_leaves_the_intent_processing_until_reconciled_without_a_second_authorize(pool: PgPool) {
    let p = setup(pool).await;
    let intent = p.create("CREDIT_CARD", 5000).await;
    let (status, processing) = p.op(&intent["id"], "authorize", json!({"cardToken": "tok_timeout"})).await;
    assert_eq!((status, processing["status"].as_str()), (202, Some("processing")), "{processing}");
    let (status, again) = p.op(&intent["id"], "authorize", json!({"cardToken": "tok_timeout"})).await;
    assert_eq!(status, 409, "never a second authorize: {again}");
    // The reconciler finds the order by its code and settles the intent.
    let mut settled = Value::Null;
    for _ in 0..100 {
        settled = p.get(&intent["id"]).await;
        if settled["status"] != "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(settled["status"], "requires_capture", "{settled}");
    assert_eq!(p.fake.seen_at("POST", "/orders").len(), 1, "one authorization request, ever");
    assert!(!p.fake.seen_at("GET", "/orders").is_empty(), "found by code");
    let events = p.events(&intent["id"]).await;
    assert!(events.contains(&"payment_intent.outcome_unknown".to_owned()));
    p.clean();
}
