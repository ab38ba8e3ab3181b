//! Ad hoc charges: settlement and failing refunds, a restart between stop,
//! capture and receipt, and company-scoped session lists.

use super::*;

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
