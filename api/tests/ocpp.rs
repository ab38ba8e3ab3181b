//! The OCPP gateway against real charge points: the PyPI `ocpp` package
//! (mobilityhouse), which validates every message in both directions against the
//! official OCA schemas, drives the gateway for OCPP 1.6-J and 2.0.1.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, *};
use uuid::Uuid;

async fn register(s: &Setup, id: &str, version: &str) {
    let mut body = terminal(id, 7);
    body["ocppVersion"] = json!(version);
    let (status, body) = json_of(s.app.post("/v1/terminals", &s.token, &body).send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
}

async fn scalar(s: &Setup, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&s.app.running.state.pool).await.unwrap()
}

/// Waits until the read models have applied everything.
async fn caught_up(s: &Setup) {
    let store = &s.app.running.state.store;
    for _ in 0..500 {
        let head = store.head_position().await.unwrap();
        let held = store.held_back_after(head).await.unwrap();
        let mut behind = false;
        for name in ["terminals", "ocpp"] {
            behind |= projections::runtime::checkpoint(store.pool(), name).await.unwrap() < head;
        }
        if !held && !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("projections did not catch up");
}

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

#[sqlx::test(migrations = "../migrations")]
async fn rest_commands_reach_a_16_charger_and_return_its_answer(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-R16", "1.6").await;
    let mut cp = Cp::spawn("serve16", &s.base, "EVSE-R16", PASSWORD, &["3"]);
    cp.until("READY").await;

    let (status, started) = json_of(
        s.app
            .post("/v1/terminals/EVSE-R16/remote-start", &s.token, &json!({"connectorId": 1, "idTag": "APP-USER-9"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        (started["status"].as_str(), started["response"]["status"].as_str()),
        (Some("answered"), Some("Accepted"))
    );

    let profile = json!({"connectorId": 1, "chargingProfile": {
        "chargingProfileId": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}, {"startPeriod": 3600, "limit": 3700.0}]}}});
    let (status, answer) =
        json_of(s.app.post("/v1/terminals/EVSE-R16/charging-profiles", &s.token, &profile).send().await.unwrap()).await;
    assert_eq!((status, answer["response"]["status"].as_str()), (200, Some("Accepted")), "{answer}");

    // The charger started the transaction after accepting the remote start.
    let mut tx = Value::Null;
    for _ in 0..100 {
        let (_, txs) = json_of(s.app.get("/v1/terminals/EVSE-R16/transactions", &s.token).send().await.unwrap()).await;
        if txs[0]["transactionId"].is_string() {
            tx = txs[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((tx["idTag"].as_str(), tx["powerW"].as_i64()), (Some("APP-USER-9"), Some(7400)), "{tx}");
    let (status, stopped) = json_of(
        s.app
            .post("/v1/terminals/EVSE-R16/remote-stop", &s.token, &json!({"transactionId": tx["transactionId"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, stopped["response"]["status"].as_str()), (200, Some("Accepted")), "{stopped}");

    let out = cp.result().await;
    assert_eq!(out["received"], json!(["RemoteStartTransaction", "SetChargingProfile", "RemoteStopTransaction"]));
    assert_eq!(out["profile"]["charging_schedule"]["charging_rate_unit"], "W");
    let (_, command) = json_of(
        s.app
            .get(&format!("/v1/terminals/EVSE-R16/commands/{}", started["commandId"].as_str().unwrap()), &s.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(command["status"], "answered");
    // A payload outside the official schema never leaves.
    let (status, body) = json_of(
        s.app
            .post(
                "/v1/terminals/EVSE-R16/commands",
                &s.token,
                &json!({"action": "Reset", "payload": {"type": "Sideways"}}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("payload")));
}

#[sqlx::test(migrations = "../migrations")]
async fn rest_commands_reach_a_201_charger(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-R201", "2.0.1").await;
    let mut cp = Cp::spawn("serve201", &s.base, "EVSE-R201", PASSWORD, &["3"]);
    cp.until("READY").await;
    let (status, started) = json_of(
        s.app
            .post("/v1/terminals/EVSE-R201/remote-start", &s.token, &json!({"evseId": 1, "idTag": "APP-201"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, started["response"]["status"].as_str()), (200, Some("Accepted")), "{started}");
    let profile = json!({"evseId": 1, "chargingProfile": {"id": 3, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}]}});
    let (status, answer) =
        json_of(s.app.post("/v1/terminals/EVSE-R201/charging-profiles", &s.token, &profile).send().await.unwrap())
            .await;
    assert_eq!((status, answer["response"]["status"].as_str()), (200, Some("Accepted")), "{answer}");
    let (status, stopped) = json_of(
        s.app
            .post("/v1/terminals/EVSE-R201/remote-stop", &s.token, &json!({"transactionId": "tx-remote-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, stopped["response"]["status"].as_str()), (200, Some("Accepted")), "{stopped}");
    let out = cp.result().await;
    assert_eq!(out["received"], json!(["RequestStartTransaction", "SetChargingProfile", "RequestStopTransaction"]));
    caught_up(&s).await;
    let (_, txs) = json_of(s.app.get("/v1/terminals/EVSE-R201/transactions", &s.token).send().await.unwrap()).await;
    assert_eq!((txs[0]["transactionId"].as_str(), txs[0]["energyWh"].as_i64()), (Some("tx-remote-1"), Some(2000)));
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_frames_get_the_right_callerror_and_the_connection_survives(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-BAD", "1.6").await;
    let out = run("bad16", &s.base, "EVSE-BAD", PASSWORD, &[]).await;
    let code = |k: &str| (out[k][0].as_i64(), out[k][2].as_str().map(str::to_owned));
    assert_eq!(code("malformed"), (Some(4), Some("FormationViolation".into())));
    assert_eq!(code("unknownAction"), (Some(4), Some("NotImplemented".into())));
    assert_eq!(code("csmsAction"), (Some(4), Some("NotSupported".into())));
    assert_eq!(code("missingField"), (Some(4), Some("OccurenceConstraintViolation".into())));
    assert_eq!(code("wrongType"), (Some(4), Some("TypeConstraintViolation".into())));
    assert_eq!(code("tooLong"), (Some(4), Some("PropertyConstraintViolation".into())));
    assert_eq!(code("extraField"), (Some(4), Some("FormationViolation".into())));
    assert_eq!(code("notArray"), (Some(4), Some("FormationViolation".into())));
    assert_eq!(out["notArray"][1], "-1");
    assert_eq!(code("badType"), (Some(4), Some("ProtocolError".into())));
    assert_eq!(out["missingField"][1], "b4", "the CALLERROR answers the message id");
    assert_eq!((out["stillAlive"][0].as_i64(), out["stillAlive"][1].as_str()), (Some(3), Some("b9")));
    assert!(out["stillAlive"][2]["currentTime"].is_string());
    // Each bad frame is in the log with its rejection, and nothing else changed.
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE event_type = 'ocpp.frame_received' AND payload->'rejection' <> 'null'::jsonb").await, 9);
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-BAD' AND event_type NOT LIKE 'charger.%connected'").await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn handshakes_are_refused_clearly(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-HS", "1.6").await;
    let wrong = run("connect", &s.base, "EVSE-HS", "not-the-password-at-all", &["ocpp1.6"]).await;
    assert_eq!(wrong["status"], 401);
    let none = run("connect", &s.base, "EVSE-HS", "", &["ocpp1.6"]).await;
    assert_eq!(none["status"], 401);
    let protocol = run("connect", &s.base, "EVSE-HS", PASSWORD, &["ocpp0.9"]).await;
    assert_eq!(protocol["status"], 400);
    assert!(protocol["body"].as_str().unwrap().contains("ocpp1.6"));
    let unknown = run("connect", &s.base, "EVSE-NOBODY", PASSWORD, &["ocpp1.6"]).await;
    assert_eq!(unknown["status"], 404);
    let ok = run("connect", &s.base, "EVSE-HS", PASSWORD, &["ocpp1.6"]).await;
    assert_eq!((ok["status"].as_str(), ok["subprotocol"].as_str()), (Some("open"), Some("ocpp1.6")));
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE event_type = 'charger.connected'").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_frame_over_the_limit_closes_the_connection_with_1009(pool: PgPool) {
    let s = setup(pool, |c| c.ocpp.max_frame_bytes = 4096).await;
    register(&s, "EVSE-BIG", "1.6").await;
    let out = run("bigframe", &s.base, "EVSE-BIG", PASSWORD, &["10000"]).await;
    assert_eq!((out["closed"].as_bool(), out["code"].as_i64()), (Some(true), Some(1009)), "{out}");
    caught_up(&s).await;
    let reason: String =
        sqlx::query_scalar("SELECT payload->>'reason' FROM events WHERE event_type = 'charger.disconnected'")
            .fetch_one(&s.app.running.state.pool)
            .await
            .unwrap();
    assert!(reason.starts_with("frame too large"), "{reason}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_second_connection_replaces_the_first_cleanly(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-TWICE", "1.6").await;
    let mut first = Cp::spawn("hold", &s.base, "EVSE-TWICE", PASSWORD, &["30"]);
    first.until("READY").await;
    let mut second = Cp::spawn("hold", &s.base, "EVSE-TWICE", PASSWORD, &["1"]);
    second.until("READY").await;
    let out = first.result().await;
    assert_eq!((out["closedBy"].as_str(), out["code"].as_i64()), (Some("server"), Some(1001)), "{out}");
    second.result().await;
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = 'charger-EVSE-TWICE' AND event_type LIKE 'charger.%connected' ORDER BY stream_version",
    )
    .fetch_all(&s.app.running.state.pool)
    .await
    .unwrap();
    assert_eq!(kinds[..3], ["charger.connected", "charger.disconnected", "charger.connected"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn offline_commands_are_refused_or_delivered_once_on_reconnect(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-OFF", "1.6").await;
    let reset = json!({"action": "Reset", "payload": {"type": "Soft"}});
    let (status, body) =
        json_of(s.app.post("/v1/terminals/EVSE-OFF/commands", &s.token, &reset).send().await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (409, Some("urn:chargeledger:problem:conflict")));
    let mut queued = reset.clone();
    queued["deliverOnReconnect"] = json!(true);
    let (status, body) =
        json_of(s.app.post("/v1/terminals/EVSE-OFF/commands", &s.token, &queued).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("queued")));
    let command = body["commandId"].as_str().unwrap().to_owned();

    let out = run("serve16", &s.base, "EVSE-OFF", PASSWORD, &["1"]).await;
    assert_eq!(out["received"], json!(["Reset"]));
    let (_, view) =
        json_of(s.app.get(&format!("/v1/terminals/EVSE-OFF/commands/{command}"), &s.token).send().await.unwrap()).await;
    assert_eq!((view["status"].as_str(), view["response"]["status"].as_str()), (Some("answered"), Some("Accepted")));
    // A second connection does not send it again.
    let out = run("connect", &s.base, "EVSE-OFF", PASSWORD, &["ocpp1.6"]).await;
    assert_eq!(out["status"], "open");
    assert_eq!(scalar(&s, "SELECT count(*) FROM events WHERE event_type = 'ocpp_command.sent'").await, 1);
    // Another company cannot see the command.
    let other = s.app.token(Uuid::new_v4(), Role::Admin);
    assert_eq!(
        json_of(s.app.get(&format!("/v1/terminals/EVSE-OFF/commands/{command}"), &other).send().await.unwrap()).await.0,
        404
    );
    let _ = s.company;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_command_the_charger_never_answers_gets_504(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-SLOW", "1.6").await;
    let mut cp = Cp::spawn("serve16", &s.base, "EVSE-SLOW", PASSWORD, &["99", "slow"]);
    cp.until("READY").await;
    let unlock = json!({"action": "UnlockConnector", "payload": {"connectorId": 1}, "timeoutMs": 400});
    let (status, body) =
        json_of(s.app.post("/v1/terminals/EVSE-SLOW/commands", &s.token, &unlock).send().await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (504, Some("urn:chargeledger:problem:charger-timeout")), "{body}");
    let failed: Value = sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'ocpp_command.failed'")
        .fetch_one(&s.app.running.state.pool)
        .await
        .unwrap();
    assert_eq!(failed["reason"], "timeout");
    drop(cp);
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_chargers_are_auto_registered_when_configured(pool: PgPool) {
    let company = Uuid::new_v4();
    let s = setup(pool, |c| c.ocpp.auto_register_company = Some(company)).await;
    let out = run("connect", &s.base, "EVSE-NEW-1", "", &["ocpp2.0.1"]).await;
    assert_eq!(out["status"], "open");
    caught_up(&s).await;
    let token = s.app.token(company, Role::Viewer);
    let (status, terminal) = json_of(s.app.get("/v1/terminals/EVSE-NEW-1", &token).send().await.unwrap()).await;
    assert_eq!((status, terminal["ocppVersion"].as_str()), (200, Some("2.0.1")), "{terminal}");
}

async fn every_command(s: &Setup, id: &str, commands: &[(&str, Value, &str, &str)]) {
    for (action, payload, field, expected) in commands {
        let body = json!({"action": action, "payload": payload});
        let (status, answer) =
            json_of(s.app.post(&format!("/v1/terminals/{id}/commands"), &s.token, &body).send().await.unwrap()).await;
        assert_eq!(status, 200, "{action}: {answer}");
        assert_eq!(answer["status"], "answered", "{action}");
        let value = answer["response"].pointer(field).cloned().unwrap_or(Value::Null);
        assert_eq!(value, json!(expected), "{action}: {answer}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn every_16_command_goes_through_rest_and_back(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-ALL16", "1.6").await;
    let commands = [
        ("Reset", json!({"type": "Hard"}), "/status", "Accepted"),
        ("ChangeAvailability", json!({"connectorId": 1, "type": "Inoperative"}), "/status", "Accepted"),
        ("UnlockConnector", json!({"connectorId": 1}), "/status", "Unlocked"),
        ("TriggerMessage", json!({"requestedMessage": "StatusNotification", "connectorId": 1}), "/status", "Accepted"),
        ("GetConfiguration", json!({"key": ["HeartbeatInterval"]}), "/configurationKey/0/value", "300"),
        ("ChangeConfiguration", json!({"key": "HeartbeatInterval", "value": "120"}), "/status", "Accepted"),
        ("ClearChargingProfile", json!({"chargingProfilePurpose": "TxDefaultProfile"}), "/status", "Accepted"),
        (
            "GetCompositeSchedule",
            json!({"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"}),
            "/chargingSchedule/chargingRateUnit",
            "W",
        ),
        ("ClearCache", json!({}), "/status", "Accepted"),
        ("DataTransfer", json!({"vendorId": "com.example", "data": "ping"}), "/data", "pong"),
    ];
    let mut cp = Cp::spawn("serve16", &s.base, "EVSE-ALL16", PASSWORD, &[&commands.len().to_string()]);
    cp.until("READY").await;
    every_command(&s, "EVSE-ALL16", &commands).await;
    let out = cp.result().await;
    assert_eq!(out["received"].as_array().unwrap().len(), commands.len());
    // One CALL out and one CALLRESULT in per command, in the frame stream.
    let out_calls = scalar(&s, "SELECT count(*) FROM events WHERE stream_id = 'ocpp-EVSE-ALL16' AND event_type = 'ocpp.frame_sent' AND payload->>'messageTypeId' = '2'").await;
    assert_eq!(out_calls, commands.len() as i64);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_201_command_goes_through_rest_and_back(pool: PgPool) {
    let s = setup(pool, |_| {}).await;
    register(&s, "EVSE-ALL201", "2.0.1").await;
    let variable = json!({"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}});
    let mut set = variable.clone();
    set["attributeValue"] = json!("120");
    let commands = [
        ("Reset", json!({"type": "OnIdle"}), "/status", "Accepted"),
        ("ChangeAvailability", json!({"operationalStatus": "Inoperative", "evse": {"id": 1}}), "/status", "Accepted"),
        ("UnlockConnector", json!({"evseId": 1, "connectorId": 1}), "/status", "Unlocked"),
        (
            "TriggerMessage",
            json!({"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}}),
            "/status",
            "Accepted",
        ),
        ("GetVariables", json!({"getVariableData": [variable]}), "/getVariableResult/0/attributeValue", "300"),
        ("SetVariables", json!({"setVariableData": [set]}), "/setVariableResult/0/attributeStatus", "Accepted"),
        (
            "ClearChargingProfile",
            json!({"chargingProfileCriteria": {"chargingProfilePurpose": "TxDefaultProfile"}}),
            "/status",
            "Accepted",
        ),
        ("GetCompositeSchedule", json!({"duration": 3600, "evseId": 1}), "/status", "Accepted"),
        ("ClearCache", json!({}), "/status", "Accepted"),
        ("DataTransfer", json!({"vendorId": "com.example"}), "/status", "Accepted"),
    ];
    let mut cp = Cp::spawn("serve201", &s.base, "EVSE-ALL201", PASSWORD, &[&commands.len().to_string()]);
    cp.until("READY").await;
    every_command(&s, "EVSE-ALL201", &commands).await;
    let out = cp.result().await;
    assert_eq!(out["received"].as_array().unwrap().len(), commands.len());
}

#[sqlx::test(migrations = "../migrations")]
async fn security_profile_2_basic_auth_over_tls(pool: PgPool) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let s = setup(pool, |c| {
        c.ocpp.tls =
            Some((format!("{fixtures}/ocpp-tls-cert.pem").into(), format!("{fixtures}/ocpp-tls-key.pem").into()))
    })
    .await;
    register(&s, "EVSE-TLS", "1.6").await;
    let wss = s.base.replacen("ws://", "wss://", 1);
    let out = run("flow16", &wss, "EVSE-TLS", PASSWORD, &[]).await;
    assert_eq!(out["transactionId"], 1);
    let wrong = run("connect", &wss, "EVSE-TLS", "not-the-password-at-all", &["ocpp1.6"]).await;
    assert_eq!(wrong["status"], 401);
    // Plain ws:// does not reach a TLS gateway.
    let plain = Cp::spawn("connect", &s.base, "EVSE-TLS", PASSWORD, &["ocpp1.6"]);
    let status = tokio::time::timeout(Duration::from_secs(30), plain.child.wait_with_output()).await.unwrap().unwrap();
    assert!(!status.status.success(), "a plain connection to the TLS port must fail");
}
