//! Charge sessions through a charger from start to receipt: card (1.6 and
//! 2.0.1), the pre-authorized amount reached, and PIX.

use super::*;

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
