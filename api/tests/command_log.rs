//! Every write goes through the one command path (issue 12): after a full
//! charging session — REST calls, a real OCPP 1.6 charge point, the session
//! manager and the payment service — every event in the log carries a command
//! id that `command_log` holds for the event's company, and the log holds
//! commands of each kind of writer.
#![allow(clippy::unwrap_used)]

mod support;

use std::{collections::BTreeSet, time::Duration};

use chargeledger_api::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::{charger::*, pagarme::FakePagarme, *};
use uuid::Uuid;

#[sqlx::test(migrations = "../migrations")]
async fn a_full_session_records_a_command_for_every_event_it_appends(pool: PgPool) {
    let (fake, url) = FakePagarme::start().await;
    let mut config = test_config(&pool);
    config.payments.gateway = "pagarme".into();
    config.payments.pagarme_base_url = url;
    config.payments.pagarme_secret_key = Some(support::pagarme::SECRET_KEY.to_owned().into());
    config.sessions.retry_schedule = vec![Duration::from_millis(100); 7];
    let app = TestApp::start_with(config, pool.clone()).await;
    let base = format!("ws://{}/ocpp", app.running.ocpp_addr.unwrap());
    let company = Uuid::new_v4();
    let token = app.token(company, Role::Operator);

    // REST: register the charger (under an Idempotency-Key).
    let registered = app.post("/v1/terminals", &token, &terminal("EVSE-LOG", 61)).header("Idempotency-Key", "reg-1");
    let (status, body) = json_of(registered.send().await.unwrap()).await;
    assert_eq!(status, 201, "{body}");

    // OCPP: a real charge point boots, reports, charges and stops.
    let mut cp = Cp::spawn("session16", &base, "EVSE-LOG", PASSWORD, &["normal", "4000", "60"]);
    cp.until("READY").await;
    let start = json!({
        "stationId": 61, "chargePointId": "EVSE-LOG", "connectorId": 1, "method": "CREDIT_CARD", "amount": 5000,
        "email": "driver@company.com", "cpf": "12345678909", "cardToken": "tok_ok",
        "charger": {"price": 1.50, "fixed_connection_cost": 2.00}
    });
    let mut session = None;
    for _ in 0..200 {
        let (status, started) = json_of(app.post("/charge/start", &token, &start).send().await.unwrap()).await;
        // Until the read model has seen the charger online and its connector report.
        let unreported = started["errors"][0]["message"] == "has not reported its status yet";
        if status == 409 || (status == 422 && unreported) {
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        }
        assert_eq!(status, 200, "{started}");
        session = started["sessionId"].as_str().map(str::to_owned);
        break;
    }
    let session = session.expect("the charger came online");
    let status_of = |v: &Value| v["status"].as_str().unwrap_or_default().to_owned();
    let wait = |what: &'static str| {
        let (app, token, session) = (&app, &token, &session);
        async move {
            for _ in 0..400 {
                let path = format!("/v1/charge-sessions/{session}");
                let (_, s) = json_of(app.get(&path, token).send().await.unwrap()).await;
                if status_of(&s) == what {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the session never became {what}");
        }
    };
    wait("CHARGING").await;
    let (status, body) =
        json_of(app.post("/charge/stop", &token, &json!({"sessionId": session})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let done = wait("COMPLETED").await;
    assert_eq!(done["capturedCents"].as_i64(), Some(800), "2.00 + 4 kWh × 1.50: {done}");
    cp.result().await;
    app.running.stop().await;

    // Every event (but the sealer's, which is the log's own bookkeeping) names
    // a command that command_log holds for the event's company.
    let orphans: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT e.stream_id, e.event_type, e.metadata->>'commandId' FROM events e \
         WHERE e.stream_id <> 'log-seals' AND NOT EXISTS (SELECT 1 FROM command_log c \
           WHERE c.company_id = (e.metadata->>'companyId')::uuid AND c.command_id = e.metadata->>'commandId') \
         ORDER BY e.position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(orphans.is_empty(), "events without a recorded command: {orphans:#?}");

    // Each kind of writer is there: the REST routes, the charger, the session
    // manager and the payment service it drives.
    let actors: BTreeSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT split_part(e.metadata->>'actor', ':', 1) || ':' || \
                CASE WHEN e.metadata->>'actor' LIKE 'system:%' THEN split_part(e.metadata->>'actor', ':', 2) ELSE '' END \
         FROM events e JOIN command_log c ON c.company_id = (e.metadata->>'companyId')::uuid \
           AND c.command_id = e.metadata->>'commandId' WHERE e.stream_id <> 'log-seals'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for kind in ["charger:", "system:session-manager"] {
        assert!(actors.contains(kind), "no command by {kind} in {actors:?}");
    }
    assert!(actors.contains("user:"), "no REST command: {actors:?}");
    let types: BTreeSet<String> =
        sqlx::query_scalar("SELECT DISTINCT command_type FROM command_log WHERE company_id = $1")
            .bind(company)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for t in
        ["ocpp.BootNotification", "ocpp.StartTransaction", "ocpp.MeterValues", "ocpp.StopTransaction", "ocpp.connect"]
    {
        assert!(types.contains(t), "no {t} command in {types:?}");
    }
    // The registration is recorded under its Idempotency-Key (scoped to the caller).
    let registered: Vec<String> = sqlx::query_scalar(
        "SELECT command_id FROM command_log WHERE company_id = $1 AND command_type = 'terminal.register'",
    )
    .bind(company)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(matches!(registered.as_slice(), [id] if id.starts_with("reg-1 ")), "{registered:?}");
    assert!(fake.problems().is_empty(), "{:?}", fake.problems());
    assert_log_verifies(&commands::EventStore::new(pool.clone())).await;
}
