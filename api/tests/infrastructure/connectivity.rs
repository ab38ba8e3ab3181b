//! Mapping connectivity tests against live charge points (1.6 and 2.0.1): the
//! configured timeout and retries, refusals, and adapter health.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn a_mapping_test_reaches_a_connected_charger_and_fails_clearly_for_a_disconnected_one(pool: PgPool) {
    let s = &setup(pool).await;
    s.register(&s.token, "EVSE-1", 10, "1.6").await;
    s.register(&s.token, "EVSE-2", 20, "1.6").await;
    let mut one = Cp::spawn("infra16", &s.base, "EVSE-1", PASSWORD, &["ok"]);
    let mut two = Cp::spawn("infra16", &s.base, "EVSE-2", PASSWORD, &["ok"]);
    one.until("READY").await;
    two.until("READY").await;
    let first = s.map(10, &["EVSE-1"]).await;
    let second = s.map(20, &["EVSE-2"]).await;

    let health = s.health().await;
    assert_eq!((health["status"].as_str(), health["mappedStations"].as_i64()), (Some("healthy"), Some(2)), "{health}");
    assert_eq!((health["connectedChargePoints"].as_i64(), health["failing"].as_i64()), (Some(2), Some(0)));
    assert!(health["lastSuccessAt"].is_null());

    // A connected charger answers TriggerMessage(Heartbeat), then sends its Heartbeat.
    let report = s.test(&first).await;
    assert_eq!((report["ok"].as_bool(), report["timeoutMs"].as_i64()), (Some(true), Some(10_000)), "{report}");
    let result = &report["chargePoints"][0];
    assert_eq!((result["chargePointId"].as_str(), result["result"].as_str()), (Some("EVSE-1"), Some("ok")), "{report}");
    assert_eq!((result["connected"].as_bool(), result["attempts"].as_i64()), (Some(true), Some(1)));
    assert!(result["latencyMs"].as_i64().is_some_and(|ms| ms >= 0), "{report}");
    assert!(result["error"].is_null());
    let triggered = "SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested' AND payload->>'chargePointId' = 'EVSE-1' \
                     AND payload->>'action' = 'TriggerMessage' AND payload->'payload'->>'requestedMessage' = 'Heartbeat'";
    assert_eq!(s.scalar(triggered).await, 1);
    let answered = "SELECT count(*) FROM events a JOIN events r ON r.stream_id = a.stream_id \
                    WHERE a.event_type = 'ocpp_command.answered' AND r.payload->>'chargePointId' = 'EVSE-1'";
    assert_eq!(s.scalar(answered).await, 1, "the answer came through the command stream");
    let heartbeats =
        "SELECT count(*) FROM events WHERE stream_id = 'ocpp-EVSE-1' AND event_type = 'ocpp.frame_received' \
                      AND payload->>'action' = 'Heartbeat'";
    eventually("the triggered Heartbeat", move || async move { (s.scalar(heartbeats).await == 1).then_some(()) }).await;

    // A charger that went away: not connected, nothing sent, a clear error.
    s.tell("EVSE-2", "quit", "").await;
    assert_eq!(two.result().await["triggers"], 0);
    eventually("EVSE-2 disconnecting", move || async move {
        (s.health().await["connectedChargePoints"] == 1).then_some(())
    })
    .await;
    let report = s.test(&second).await;
    let result = &report["chargePoints"][0];
    assert_eq!((report["ok"].as_bool(), result["result"].as_str()), (Some(false), Some("not_connected")), "{report}");
    assert_eq!((result["connected"].as_bool(), result["attempts"].as_i64()), (Some(false), Some(0)));
    assert!(result["latencyMs"].is_null());
    assert!(result["error"].as_str().unwrap().contains("EVSE-2 is not connected"), "{report}");
    let sent = "SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested' AND payload->>'chargePointId' = 'EVSE-2'";
    assert_eq!(s.scalar(sent).await, 1, "only the quit command, no TriggerMessage");

    // Both outcomes are in the log, and adapter health follows them.
    let tested =
        "SELECT string_agg(payload->>'ok', ',' ORDER BY position) FROM events WHERE event_type = 'cpms_mapping.tested'";
    let outcomes: String = sqlx::query_scalar(tested).fetch_one(&s.app.running.state.pool).await.unwrap();
    assert_eq!(outcomes, "true,false");
    let health = s.health().await;
    assert_eq!((health["status"].as_str(), health["failing"].as_i64()), (Some("degraded"), Some(1)), "{health}");
    assert_eq!(health["failingChargePoints"], json!(["EVSE-2"]));
    assert_eq!((health["mappedChargePoints"].as_i64(), health["connectedChargePoints"].as_i64()), (Some(2), Some(1)));
    assert!(health["lastError"].as_str().unwrap().contains("EVSE-2: not_connected"), "{health}");
    assert!(health["lastSuccessAt"].is_string() && health["lastErrorAt"].is_string(), "{health}");
    let mapping = s.get(&at(&format!("/mappings/{}", second["id"].as_str().unwrap()))).await;
    assert_eq!(mapping["lastTest"]["ok"], false, "{mapping}");
    assert!(mapping["lastTest"]["lastSuccessAt"].is_null());

    // A company without mappings: an idle adapter.
    let other = s.app.token(Uuid::new_v4(), Role::Viewer);
    let (_, theirs) = send(s.app.get(&at("/adapters/health"), &other)).await;
    assert_eq!(
        (theirs["adapters"][0]["status"].as_str(), theirs["adapters"][0]["mappedStations"].as_i64()),
        (Some("idle"), Some(0))
    );
    s.tell("EVSE-1", "quit", "").await;
    assert_eq!(one.result().await["heartbeats"], 1);

    // The read model is the log's: a rebuild gives the same rows.
    let rows = || async {
        let sql = "SELECT row_to_json(m)::text FROM rm_infrastructure.mappings m \
                   UNION ALL SELECT row_to_json(p)::text FROM rm_infrastructure.charge_points p ORDER BY 1";
        sqlx::query_scalar::<_, String>(sql).fetch_all(&s.app.running.state.pool).await.unwrap()
    };
    let before = rows().await;
    assert_eq!(before.len(), 4, "two mappings, two charge points");
    let store = &s.app.running.state.store;
    projections::runtime::rebuild(store, &projections::infrastructure::InfrastructureProjector, |_, _| {})
        .await
        .unwrap();
    assert_eq!(rows().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_test_uses_the_configured_timeout_and_retries_and_reports_refusals_and_201_chargers(pool: PgPool) {
    let s = &setup(pool).await;
    s.register(&s.token, "EVSE-SILENT", 30, "1.6").await;
    s.register(&s.token, "EVSE-NO", 30, "1.6").await;
    s.register(&s.token, "EVSE-201", 50, "2.0.1").await;
    let mut silent = Cp::spawn("infra16", &s.base, "EVSE-SILENT", PASSWORD, &["silent"]);
    let mut refusing = Cp::spawn("infra16", &s.base, "EVSE-NO", PASSWORD, &["reject"]);
    let mut v201 = Cp::spawn("serve201", &s.base, "EVSE-201", PASSWORD, &["1"]);
    for cp in [&mut silent, &mut refusing, &mut v201] {
        cp.until("READY").await;
    }
    let (status, config) =
        send(s.patch(&at("/config/ocpp"), &s.token, &json!({"timeoutMs": 1500, "retries": 1}))).await;
    assert_eq!(
        (status, config["timeoutMs"].as_i64(), config["retries"].as_i64()),
        (200, Some(1500), Some(1)),
        "{config}"
    );

    let mapping = s.map(30, &["EVSE-SILENT", "EVSE-NO"]).await;
    let report = s.test(&mapping).await;
    assert_eq!(
        (report["ok"].as_bool(), report["timeoutMs"].as_i64(), report["retries"].as_i64()),
        (Some(false), Some(1500), Some(1))
    );
    let (timed_out, refused) = (&report["chargePoints"][0], &report["chargePoints"][1]);
    assert_eq!((timed_out["result"].as_str(), timed_out["attempts"].as_i64()), (Some("timeout"), Some(2)), "{report}");
    assert!(timed_out["error"].as_str().unwrap().contains("within 1500 ms"), "{report}");
    assert_eq!((refused["result"].as_str(), refused["attempts"].as_i64()), (Some("rejected"), Some(1)), "{report}");
    assert!(refused["error"].as_str().unwrap().contains("Rejected"), "{report}");
    // Each request carried the configured timeout, and the gateway gave up on each.
    let requests = "SELECT count(*) FROM events WHERE event_type = 'ocpp_command.requested' \
                    AND payload->>'chargePointId' = 'EVSE-SILENT' AND (payload->>'timeoutMs')::bigint = 1500";
    assert_eq!(s.scalar(requests).await, 2);
    let timeouts = "SELECT count(*) FROM events f JOIN events r ON r.stream_id = f.stream_id AND r.event_type = 'ocpp_command.requested' \
                    WHERE f.event_type = 'ocpp_command.failed' AND f.payload->>'reason' = 'timeout' AND r.payload->>'chargePointId' = 'EVSE-SILENT'";
    assert_eq!(s.scalar(timeouts).await, 2);

    // OCPP 2.0.1: the same TriggerMessage, answered.
    let mapping = s.map(50, &["EVSE-201"]).await;
    let report = s.test(&mapping).await;
    assert_eq!(
        (report["ok"].as_bool(), report["chargePoints"][0]["result"].as_str()),
        (Some(true), Some("ok")),
        "{report}"
    );
    assert_eq!(v201.result().await["received"], json!(["TriggerMessage"]));
    s.tell("EVSE-NO", "quit", "").await;
    assert_eq!(refusing.result().await["heartbeats"], 0, "a refused trigger sends nothing");
    silent.child.kill().await.unwrap();
}
