//! The session service: starting (the charger checked, the payment
//! authorized, the charger asked to start), refusals before any money moves,
//! stopping, and an ad-hoc session's completion.

use domain::session::SessionError;

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn starting_on_an_available_connector_authorizes_then_asks_the_charger_to_start(pool: PgPool) {
    let w = world(pool);
    // Given a connected charger whose connector 1 is Available,
    let mark = w.mark().await;
    // when a card session is started on it,
    let (id, state, intent) = w.sessions.start(&actor(), start_input()).await.unwrap();
    // then the charger was looked up, 50.00 is held and the session authorized,
    assert_eq!(w.directory.asked(), [(COMPANY, CHARGER.to_owned(), 1)]);
    assert_eq!((intent.status(), intent.capturable.to_cents()), (IntentStatus::RequiresCapture, Some(5000)));
    assert_eq!((state.status, state.authorized), (SessionStatus::Authorized, 5000));
    let started = state.started.clone().unwrap();
    assert_eq!(intent.created.as_ref().map(|c| c.intent_id), Some(started.payment_intent_id));
    // and the remote start went out with the session's last transition.
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        [
            "payment_intent.created",
            "charge_session.started",
            "payment_intent.operation_requested",
            "payment_intent.gateway_exchanged",
            "payment_intent.authorized",
            "charge_session.payment_authorized",
            "charge_session.remote_start_sent",
            "ocpp_command.requested",
        ]
    );
    let (sent, requested) = (&events[6], &events[7]);
    assert_eq!(transaction(sent), transaction(requested));
    let command = &requested.payload;
    assert_eq!(sent.payload["commandId"], command["commandId"]);
    assert_eq!(requested.stream_id, format!("ocpp_command-{}", command["commandId"].as_str().unwrap()));
    assert_eq!(
        (command["chargePointId"].as_str(), command["action"].as_str()),
        (Some(CHARGER), Some("RemoteStartTransaction"))
    );
    assert_eq!(command["payload"], serde_json::json!({ "connectorId": 1, "idTag": started.id_tag }));
    assert_eq!(w.session_stream(id).await.len(), 3, "started, payment_authorized, remote_start_sent");
}

#[sqlx::test(migrations = "../migrations")]
async fn starting_on_an_offline_charger_is_refused_before_any_money_moves(pool: PgPool) {
    let w = world(pool);
    // Given a charger the read model has as disconnected,
    w.directory.answer(Some(charger("Available", false)));
    let (mark, logged) = (w.mark().await, w.commands_logged().await);
    // when a session is started on it,
    let refused = refusal(w.sessions.start(&actor(), start_input()).await);
    // then it is refused as offline; nothing is appended, logged or asked of the gateway.
    assert!(
        matches!(&refused, DomainError::Session(SessionError::ChargerOffline { charge_point_id }) if charge_point_id == CHARGER),
        "{refused:?}"
    );
    assert!(w.appended(mark).await.is_empty());
    assert_eq!(w.commands_logged().await, logged);
    assert!(w.gateway.calls().is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn starting_on_a_busy_connector_is_refused_naming_the_connector(pool: PgPool) {
    let w = world(pool);
    // Given a connected charger whose connector 1 is already charging,
    w.directory.answer(Some(charger("Charging", true)));
    let mark = w.mark().await;
    // when a session is started on it,
    let refused = refusal(w.sessions.start(&actor(), start_input()).await);
    // then the connector is named as the one field the charger's state refuses, and nothing moves.
    match refused {
        DomainError::Conflicting(fields) => {
            let named: Vec<_> = fields.iter().map(|f| (f.field.as_str(), f.message.as_str())).collect();
            assert_eq!(named, [("connectorId", "is Charging, not Available")]);
        }
        other => panic!("{other:?}"),
    }
    assert!(w.appended(mark).await.is_empty());
    assert!(w.gateway.calls().is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_declined_card_fails_the_session_and_the_charger_is_never_asked(pool: PgPool) {
    let w = world(pool);
    // Given an available charger and an issuer that declines,
    w.gateway.next(Op::Authorize, Answer::Declined("05"));
    let mark = w.mark().await;
    // when a session is started,
    let (id, state, intent) = w.sessions.start(&actor(), start_input()).await.unwrap();
    // then the payment and the session failed with the decline, and no charger command exists.
    assert_eq!((intent.status(), state.status), (IntentStatus::Failed, SessionStatus::Failed));
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        [
            "payment_intent.created",
            "charge_session.started",
            "payment_intent.operation_requested",
            "payment_intent.gateway_exchanged",
            "payment_intent.operation_failed",
            "charge_session.payment_failed",
        ]
    );
    assert_eq!(payload(&events, "charge_session.payment_failed")["code"], "card_declined");
    assert!(w.charger_commands().await.is_empty());
    assert_eq!(w.session(id).await.remote_start, None);
}

#[sqlx::test(migrations = "../migrations")]
async fn stopping_a_charging_session_asks_the_charger_to_stop_its_transaction(pool: PgPool) {
    let w = world(pool);
    // Given a session charging in transaction 42,
    let (id, _) = w.charging_session().await;
    let mark = w.mark().await;
    // when the driver stops it,
    let state = w.sessions.stop(&actor(), id, "driver_requested", "stop pressed").await.unwrap();
    // then it is stopping, and the remote stop of transaction 42 is appended with the stop request,
    assert_eq!(state.status, SessionStatus::Stopping);
    let events = w.since(mark).await;
    assert_eq!(types(&events), ["charge_session.stop_requested", "ocpp_command.requested"]);
    assert_eq!(transaction(&events[0]), transaction(&events[1]));
    assert_eq!(events[0].payload["code"], "driver_requested");
    let command = &events[1].payload;
    assert_eq!(
        (command["chargePointId"].as_str(), command["action"].as_str()),
        (Some(CHARGER), Some("RemoteStopTransaction"))
    );
    assert_eq!(command["payload"], serde_json::json!({ "transactionId": 42 }));
    // and stopping it again asks nothing more.
    let mark = w.mark().await;
    assert_eq!(
        w.sessions.stop(&actor(), id, "driver_requested", "again").await.unwrap().status,
        SessionStatus::Stopping
    );
    assert!(w.appended(mark).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn stopping_before_the_charger_started_cancels_and_releases_the_hold(pool: PgPool) {
    let w = world(pool);
    // Given a session authorized and asked to start, the charger not started yet,
    let (id, state) = w.started_session().await;
    let intent_id = state.started.as_ref().unwrap().payment_intent_id;
    let charge = w.intent(intent_id).await.charge_id.unwrap();
    let mark = w.mark().await;
    // when it is stopped,
    let state = w.sessions.stop(&actor(), id, "driver_requested", "changed my mind").await.unwrap();
    // then it is canceled and the hold voided on the gateway; the charger is not asked to stop.
    assert_eq!(state.status, SessionStatus::Canceled);
    assert_eq!(
        w.appended(mark).await,
        [
            "charge_session.canceled",
            "payment_intent.operation_requested",
            "payment_intent.gateway_exchanged",
            "payment_intent.voided"
        ]
    );
    assert_eq!(
        w.gateway.calls().last(),
        Some(&Call::Cancel { charge, amount: None, key: format!("{intent_id}:void") })
    );
    assert_eq!(w.intent(intent_id).await.status(), IntentStatus::Canceled);
    assert_eq!(w.charger_commands().await.len(), 1, "only the remote start");
}

#[sqlx::test(migrations = "../migrations")]
async fn an_adhoc_session_completes_with_the_reported_energy_and_captures_its_cost(pool: PgPool) {
    let w = world(pool);
    // Given an ad-hoc session at station 10 (no charger), authorized,
    let adhoc = StartInput { kind: SessionKind::Adhoc, charge_point_id: None, ..start_input() };
    let (id, state, _) = w.sessions.start(&actor(), adhoc).await.unwrap();
    assert_eq!(state.status, SessionStatus::Authorized);
    assert!(w.directory.asked().is_empty() && w.charger_commands().await.is_empty());
    let mark = w.mark().await;
    // when its caller reports it complete with 10 kWh,
    let state = w.sessions.complete(&actor(), id, Some(10_000), now()).await.unwrap();
    // then R$ 2.00 + 10 × R$ 1.50 = 17.00 is captured and 33.00 released.
    assert_eq!(state.status, SessionStatus::Completed);
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        [
            "charge_session.charging_started",
            "charge_session.charging_stopped",
            "charge_session.settlement_computed",
            "payment_intent.operation_requested",
            "payment_intent.gateway_exchanged",
            "payment_intent.captured",
            "charge_session.settled",
        ]
    );
    let computed = payload(&events, "charge_session.settlement_computed");
    assert_eq!((computed["costCents"].as_i64(), computed["captureCents"].as_i64()), (Some(1700), Some(1700)));
    let settled = payload(&events, "charge_session.settled");
    assert_eq!((settled["capturedCents"].as_i64(), settled["releasedCents"].as_i64()), (Some(1700), Some(3300)));
    assert!(matches!(w.gateway.calls().last(), Some(Call::Capture { amount: 1700, .. })));
}
