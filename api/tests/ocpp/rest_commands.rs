//! REST commands to 1.6 and 2.0.1 chargers: answers, offline chargers, a
//! charger that never answers, and every command of each version.

use super::*;

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
    // Not a command id: a 404 problem too (axum's rejection was a text/plain 400).
    let response = s.app.get("/v1/terminals/EVSE-OFF/commands/null,null", &s.token).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.status(), 404);
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
