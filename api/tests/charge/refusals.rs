//! Starts that do not become charging: refused before any money moves, stopped
//! during pre-authorization, rejected by the charger, or never started.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn bad_starts_are_refused_before_any_money_moves(pool: PgPool) {
    let w = world(pool).await;
    w.register("EVSE-S2", "1.6").await;
    // Offline charger: 409, nothing authorized.
    let (status, body) = w.start("EVSE-S2", "CREDIT_CARD", json!({})).await;
    assert_eq!((status, body["type"].as_str()), (409, Some("urn:chargeledger:problem:conflict")), "{body}");
    assert!(w.fake.seen().is_empty());
    let _cp = w.ready_charger("EVSE-S2", "idle", 0).await;
    let fields = |body: &Value| -> Vec<String> {
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
    };
    // Invalid in itself: every field the document refuses, at once (422).
    let (status, body) =
        w.start("EVSE-S2", "BITCOIN", json!({"cpf": "12345678900", "email": "x", "amount": 0, "connectorId": 9})).await;
    assert_eq!(status, 422, "{body}");
    for f in ["method", "amount", "email"] {
        assert!(fields(&body).iter().any(|x| x == f), "{f} not named: {body}");
    }
    // Valid in shape: the CPF's check digits (which no schema says) and the
    // connector the charger lacks are named together (422).
    let (status, body) = w.start("EVSE-S2", "PIX", json!({"cpf": "12345678900", "connectorId": 9})).await;
    assert_eq!((status, fields(&body)), (422, vec!["cpf".to_owned(), "connectorId".to_owned()]), "{body}");
    // Only the charger is to blame: a conflict with its state (409), named.
    let (status, body) = w.start("EVSE-S2", "PIX", json!({"connectorId": 9})).await;
    assert_eq!((status, fields(&body)), (409, vec!["connectorId".to_owned()]), "{body}");
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
