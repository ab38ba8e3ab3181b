//! Idempotency keys (Stripe semantics) and company-scoped intent lists.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn idempotency_keys_follow_stripe_semantics(pool: PgPool) {
    let p = setup(pool).await;
    let body = json!({"amount": 2000, "method": "CREDIT_CARD"});
    let first = p
        .app
        .post("/v1/payment-intents", &p.token, &body)
        .header("idempotency-key", "k1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let again =
        p.app.post("/v1/payment-intents", &p.token, &body).header("idempotency-key", "k1").send().await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.text().await.unwrap(), first);
    let (status, _) = json_of(
        p.app
            .post("/v1/payment-intents", &p.token, &json!({"amount": 2001, "method": "CREDIT_CARD"}))
            .header("idempotency-key", "k1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);

    // A duplicate while the first is in flight (a slow gateway) gets 409; the gateway is called once.
    let intent: Value = serde_json::from_str(&first).unwrap();
    let path = format!("/v1/payment-intents/{}/authorize", intent["id"].as_str().unwrap());
    let auth = json!({"cardToken": "tok_timeout"});
    let slow = p.app.post(&path, &p.token, &auth).header("idempotency-key", "auth-1").send();
    let duplicate = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        p.app.post(&path, &p.token, &auth).header("idempotency-key", "auth-1").send().await.unwrap()
    };
    let (slow, duplicate) = tokio::join!(slow, duplicate);
    assert_eq!(slow.unwrap().status().as_u16(), 202);
    let (status, problem) = json_of(duplicate).await;
    assert_eq!((status, problem["type"].as_str()), (409, Some("urn:chargeledger:problem:conflict")), "{problem}");
    assert_eq!(p.fake.seen_at("POST", "/orders").len(), 1);
    let keys: Vec<_> = p.fake.seen().iter().filter(|s| s.method != "GET").map(|s| s.idempotency_key.clone()).collect();
    assert!(keys.iter().all(Option::is_some));
}

#[sqlx::test(migrations = "../migrations")]
async fn intents_are_company_scoped_and_listed(pool: PgPool) {
    let p = setup(pool).await;
    let mine = p.create("CREDIT_CARD", 1000).await;
    p.create("PIX", 2000).await;
    let other = p.app.token(Uuid::new_v4(), Role::Admin);
    let id = mine["id"].as_str().unwrap();
    assert_eq!(json_of(p.app.get(&format!("/v1/payment-intents/{id}"), &other).send().await.unwrap()).await.0, 404);
    assert_eq!(
        json_of(
            p.app
                .post(&format!("/v1/payment-intents/{id}/authorize"), &other, &json!({"cardToken": "tok_ok"}))
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        404
    );
    let mut page = Value::Null;
    for _ in 0..100 {
        page = json_of(p.app.get("/v1/payment-intents?limit=1", &p.token).send().await.unwrap()).await.1;
        if page["data"].as_array().is_some_and(|d| !d.is_empty()) && page["nextCursor"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let next = json_of(
        p.app
            .get(&format!("/v1/payment-intents?limit=1&cursor={}", page["nextCursor"].as_str().unwrap()), &p.token)
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_ne!(next["data"][0]["id"], page["data"][0]["id"]);
    let theirs = json_of(p.app.get("/v1/payment-intents", &other).send().await.unwrap()).await.1;
    assert_eq!(theirs["data"], json!([]));
    // Bad input: problem+json, nothing written.
    let (status, body) = json_of(
        p.app.post("/v1/payment-intents", &p.token, &json!({"amount": 0, "method": "BITCOIN"})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = json_of(
        p.app
            .post(
                "/v1/payment-intents",
                &p.token,
                &json!({"amount": 100, "method": "PIX", "customer": {"cpf": "123.456.789-00"}}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("cpf")));
}
