//! Chargers that boot, charge and stop (1.6) or run a transaction with a seq_no
//! gap (2.0.1), every frame in the log.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn a_16_charger_boots_charges_and_stops_with_every_frame_in_the_log(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-16", "1.6").await;
    let out = run("flow16", &s.base, "EVSE-16", PASSWORD, &[]).await;
    assert_eq!(out["interval"], 300);
    assert_eq!(out["authorize"], "Accepted");
    assert_eq!(out["transactionId"], 1);
    assert_eq!(out["repeatedStartTransactionId"], 1, "the same start twice gets the same transaction");
    assert_eq!((out["stop"].as_str(), out["repeatedStop"].as_str()), (Some("Accepted"), Some("Accepted")));
    caught_up(&s).await;

    // One effect per transaction despite the repeats.
    let count =
        |t: &str| format!("SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-16' AND event_type = '{t}'");
    assert_eq!(scalar(&s, &count("charger.transaction_started")).await, 1);
    assert_eq!(scalar(&s, &count("charger.transaction_ended")).await, 1);
    assert_eq!(
        scalar(&s, &count("charger.meter_anomaly_detected")).await,
        1,
        "the falling register is recorded, not applied"
    );
    assert_eq!(scalar(&s, &count("charger.connected")).await, 2);
    assert_eq!(scalar(&s, &count("charger.disconnected")).await, 2);
    // Every frame, in and out, as it went over the wire: 15 CALLs and their 15 answers.
    let frames = "SELECT count(*) FROM events WHERE stream_id = 'ocpp-EVSE-16'";
    assert_eq!(scalar(&s, frames).await, 30);
    let raw: String = sqlx::query_scalar(
        "SELECT payload->>'raw' FROM events WHERE stream_id = 'ocpp-EVSE-16' AND payload->>'messageId' = 'stop-message-1' \
         AND event_type = 'ocpp.frame_received' ORDER BY position LIMIT 1",
    )
    .fetch_one(&s.app.running.state.pool)
    .await
    .unwrap();
    assert!(
        raw.starts_with(r#"[2,"stop-message-1","StopTransaction","#) && raw.contains(r#""meterStop":13000"#),
        "{raw}"
    );
    // Effects are caused by their frame.
    let orphan_effects = scalar(
        &s,
        "SELECT count(*) FROM events e WHERE e.stream_id = 'charger-EVSE-16' AND e.event_type LIKE 'charger.transaction%' \
         AND NOT EXISTS (SELECT 1 FROM events f WHERE f.event_id = (e.metadata->>'causationId')::uuid AND f.event_type = 'ocpp.frame_received')",
    )
    .await;
    assert_eq!(orphan_effects, 0);

    let (_, txs) = json_of(s.app.get("/v1/terminals/EVSE-16/transactions", &s.token).send().await.unwrap()).await;
    assert_eq!(txs[0]["transactionId"], "1");
    assert_eq!(txs[0]["energyWh"], 3000);
    assert_eq!(txs[0]["meterStopWh"], 13000);
    assert_eq!(txs[0]["socPercent"], 64);
    assert_eq!(txs[0]["anomalies"], 1);
    assert!(txs[0]["endedAt"].is_string());
    let (_, connectors) = json_of(s.app.get("/v1/terminals/EVSE-16/connectors", &s.token).send().await.unwrap()).await;
    assert_eq!(connectors[0]["status"], "Charging");
    // The terminals endpoints see the same: the connector's live status, disconnected now.
    let (_, terminal) = json_of(s.app.get("/v1/terminals/EVSE-16", &s.token).send().await.unwrap()).await;
    assert_eq!(
        (terminal["connectors"][0]["status"].as_str(), terminal["connected"].as_bool()),
        (Some("Charging"), Some(false)),
        "{terminal}"
    );
    assert!(terminal["lastSeenAt"].is_string());
    assert_log_verifies(&s.app.running.state.store).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_201_charger_runs_a_transaction_with_a_seq_no_gap(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-201", "2.0.1").await;
    let out = run("flow201", &s.base, "EVSE-201", PASSWORD, &[]).await;
    assert_eq!((out["interval"].as_i64(), out["authorize"].as_str()), (Some(300), Some("Accepted")));
    caught_up(&s).await;
    let gap: Value =
        sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'charger.sequence_gap_detected'")
            .fetch_one(&s.app.running.state.pool)
            .await
            .unwrap();
    assert_eq!((gap["expectedSeqNo"].as_i64(), gap["receivedSeqNo"].as_i64()), (Some(2), Some(4)));
    let (_, txs) = json_of(s.app.get("/v1/terminals/EVSE-201/transactions", &s.token).send().await.unwrap()).await;
    assert_eq!(txs[0]["transactionId"], "tx-201-a");
    assert_eq!(txs[0]["meterStartWh"], 1000);
    assert_eq!(txs[0]["energyWh"], 2000);
    assert_eq!(txs[0]["sequenceGaps"], 1);
    assert_eq!(txs[0]["stopReason"], "EVDisconnected");
    let (_, connectors) = json_of(s.app.get("/v1/terminals/EVSE-201/connectors", &s.token).send().await.unwrap()).await;
    assert_eq!((connectors[0]["evseId"].as_i64(), connectors[0]["status"].as_str()), (Some(1), Some("Occupied")));
    let booted: Value = sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'charger.booted'")
        .fetch_one(&s.app.running.state.pool)
        .await
        .unwrap();
    assert_eq!((booted["model"].as_str(), booted["reason"].as_str()), (Some("Py201"), Some("PowerUp")));
    assert_log_verifies(&s.app.running.state.store).await;
}
