//! Connections: bad frames, refused handshakes, oversized frames, a second
//! connection, auto-registration, and security profile 2 over TLS.

use super::*;

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
    // No charger command of either connection is left in `command_log`
    // without the events it wrote (read once the second connection's
    // disconnection is recorded). The stale-connection case, a command that
    // decides nothing, is `a_command_that_decides_nothing_leaves_no_command_behind`.
    for _ in 0..200 {
        let q = "SELECT count(*) FROM events WHERE stream_id = 'charger-EVSE-TWICE' AND event_type = 'charger.disconnected'";
        if scalar(&s, q).await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let empty: Vec<(String, String)> = sqlx::query_as(
        "SELECT command_type, command_id FROM command_log c WHERE c.command_type LIKE 'ocpp.%' \
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.metadata->>'commandId' = c.command_id)",
    )
    .fetch_all(&s.app.running.state.pool)
    .await
    .unwrap();
    assert!(empty.is_empty(), "commands that appended nothing: {empty:?}");
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
