//! The session manager: reactions to what chargers did (`react_all`) and the
//! sweep of queued work that is due (`sweep`).

use chargeledger_commands::sessions::{manager::CHECKPOINT, DueSession, MailError};
use domain::charger::command::{OcppCommandAnswered, OcppCommandEvent};

use super::*;

/// The queue has `id` due now.
fn due(id: Uuid) -> Vec<DueSession> {
    vec![DueSession { id, company: COMPANY, updated_at: now() }]
}

/// A session charged 10 kWh (meter 1000 → 11000 Wh) and completed: 17.00 captured.
async fn completed_session(w: &World) -> Uuid {
    let (id, _) = w.charging_session().await;
    w.charger_did(ChargerEvent::TransactionEnded(transaction_ended(11_000))).await;
    w.react().await;
    assert_eq!(w.session(id).await.status, SessionStatus::Completed);
    id
}

#[sqlx::test(migrations = "../migrations")]
async fn a_transaction_started_with_the_session_tag_moves_it_to_charging(pool: PgPool) {
    let w = world(pool);
    // Given a session asked to start, and its charger reporting transaction 42 for its tag on connector 1,
    let (id, state) = w.started_session().await;
    w.charger_did(ChargerEvent::TransactionStarted(transaction_started(&state, 1))).await;
    let mark = w.mark().await;
    // when the manager reacts,
    w.react().await;
    // then the session is charging in that transaction, from the meter's start.
    let events = w.since(mark).await;
    assert_eq!(types(&events), ["charge_session.charging_started"]);
    assert_eq!(events[0].stream_id, format!("charge_session-{id}"));
    assert_eq!(
        (events[0].payload["transactionId"].as_str(), events[0].payload["meterStartWh"].as_i64()),
        (Some("42"), Some(1000))
    );
    let state = w.session(id).await;
    assert_eq!((state.status, state.transaction_id.as_deref()), (SessionStatus::Charging, Some("42")));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_transaction_started_on_another_connector_is_not_linked(pool: PgPool) {
    let w = world(pool);
    // Given a session on connector 1, and its tag started on connector 2,
    let (id, state) = w.started_session().await;
    w.charger_did(ChargerEvent::TransactionStarted(transaction_started(&state, 2))).await;
    let mark = w.mark().await;
    // when the manager reacts, then nothing is appended and the session still waits.
    w.react().await;
    assert!(w.appended(mark).await.is_empty());
    assert_eq!(w.session(id).await.status, SessionStatus::Authorized);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_transaction_ended_settles_the_session_and_captures_its_cost(pool: PgPool) {
    let w = world(pool);
    // Given a session charging since meter 1000 Wh, and the charger ending it at 11000 Wh,
    let (id, state) = w.charging_session().await;
    let intent = state.started.as_ref().unwrap().payment_intent_id;
    let charge = w.intent(intent).await.charge_id.unwrap();
    w.charger_did(ChargerEvent::TransactionEnded(transaction_ended(11_000))).await;
    let mark = w.mark().await;
    // when the manager reacts,
    w.react().await;
    // then 10 kWh cost 17.00, which is captured; the rest of the 50.00 hold released.
    assert_eq!(w.session(id).await.status, SessionStatus::Completed);
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        [
            "charge_session.charging_stopped",
            "charge_session.settlement_computed",
            "payment_intent.operation_requested",
            "payment_intent.gateway_exchanged",
            "payment_intent.captured",
            "charge_session.settled",
        ]
    );
    let computed = payload(&events, "charge_session.settlement_computed");
    assert_eq!((computed["energyWh"].as_i64(), computed["captureCents"].as_i64()), (Some(10_000), Some(1700)));
    let settled = payload(&events, "charge_session.settled");
    assert_eq!((settled["capturedCents"].as_i64(), settled["releasedCents"].as_i64()), (Some(1700), Some(3300)));
    assert_eq!(
        w.gateway.calls().last(),
        Some(&Call::Capture { charge, amount: 1700, key: format!("{intent}:capture") })
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn reacting_to_the_whole_log_again_changes_nothing(pool: PgPool) {
    let w = world(pool);
    // Given a completed session, and a manager that lost its checkpoint (a crash before it moved),
    completed_session(&w).await;
    sqlx::query("DELETE FROM projector_checkpoints WHERE name = $1")
        .bind(CHECKPOINT)
        .execute(w.store.pool())
        .await
        .unwrap();
    let (mark, calls) = (w.mark().await, w.gateway.calls().len());
    // when it reacts to the whole log again,
    let seen = w.react().await;
    // then every event is seen, and nothing is appended or asked of the gateway.
    assert!(seen > 10, "{seen}");
    assert!(w.appended(mark).await.is_empty());
    assert_eq!(w.gateway.calls().len(), calls);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rejected_remote_start_cancels_the_session_and_voids_the_hold(pool: PgPool) {
    let w = world(pool);
    // Given a session asked to start, and the charger answering its remote start `Rejected`,
    let (id, state) = w.started_session().await;
    let command = w.charger_commands().await.remove(0);
    let answered = OcppCommandEvent::Answered(OcppCommandAnswered {
        response: serde_json::json!({ "status": "Rejected" }),
        answered_at: now(),
    });
    let write = StreamWrite {
        stream_id: command.stream_id.clone(),
        expected: ExpectedVersion::Exact(command.stream_version),
        prev_hash: None,
        events: vec![NewEvent::from_domain(&answered)],
        metadata: Metadata { company_id: Some(COMPANY.as_uuid()), ..Metadata::system("ocpp-gateway") },
    };
    w.store.append(&[write], None).await.unwrap();
    let mark = w.mark().await;
    // when the manager reacts,
    w.react().await;
    // then the session is canceled with the charger's answer and its hold voided.
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        [
            "charge_session.canceled",
            "payment_intent.operation_requested",
            "payment_intent.gateway_exchanged",
            "payment_intent.voided"
        ]
    );
    let canceled = payload(&events, "charge_session.canceled");
    assert_eq!(
        (canceled["code"].as_str(), canceled["detail"].as_str()),
        (Some("remote_start_rejected"), Some("the charger answered Rejected"))
    );
    assert_eq!(w.session(id).await.status, SessionStatus::Canceled);
    let intent = state.started.as_ref().unwrap().payment_intent_id;
    assert_eq!(w.intent(intent).await.status(), IntentStatus::Canceled);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sweep_retries_a_due_settlement_with_the_same_capture_key(pool: PgPool) {
    let w = world(pool);
    // Given a stopped session whose capture timed out (the payment processing, one failed attempt),
    let (id, state) = w.charging_session().await;
    let intent = state.started.as_ref().unwrap().payment_intent_id;
    w.gateway.next(Op::Capture, Answer::Timeout);
    w.charger_did(ChargerEvent::TransactionEnded(transaction_ended(11_000))).await;
    w.react().await;
    let stopped = w.session(id).await;
    assert_eq!((stopped.status, stopped.settlement_attempts), (SessionStatus::Settling, 1));
    let failed = w.session_stream(id).await.into_iter().find(|e| e.event_type == "charge_session.settlement_failed");
    assert_eq!(failed.unwrap().payload["reason"], "the payment is processing");
    assert_eq!(w.intent(intent).await.status(), IntentStatus::Processing);
    // and the queue has it due,
    w.queue.answer(due(id));
    let mark = w.mark().await;
    // when the manager sweeps,
    assert_eq!(w.sessions.sweep().await.unwrap(), 1);
    // then the capture is sent again under the same key (never a second capture) and the session settles.
    assert_eq!(
        w.appended(mark).await,
        ["payment_intent.gateway_exchanged", "payment_intent.captured", "charge_session.settled"]
    );
    let captures: Vec<_> = w.gateway.calls().into_iter().filter(|c| matches!(c, Call::Capture { .. })).collect();
    assert_eq!(captures.len(), 2);
    assert_eq!(captures[0], captures[1]);
    assert_eq!(w.session(id).await.status, SessionStatus::Completed);
    assert!(w.queue.asked()[0].receipts, "with a mailer, receipts are asked for");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sweep_sends_a_receipt_once_after_a_failed_attempt(pool: PgPool) {
    let w = world(pool);
    // Given a completed session that the queue has due, and a mail server down for one attempt,
    let id = completed_session(&w).await;
    w.queue.answer(due(id));
    w.mailer.fail_next(MailError::Deferred(421));
    let mark = w.mark().await;
    // when the manager sweeps, then the failed attempt is recorded;
    w.sessions.sweep().await.unwrap();
    let events = w.since(mark).await;
    assert_eq!(types(&events), ["charge_session.receipt_failed"]);
    assert_eq!(
        (events[0].payload["attempt"].as_u64(), events[0].payload["reason"].as_str()),
        (Some(1), Some("the mail server deferred the message (SMTP 421)"))
    );
    // when it sweeps again, then the receipt goes out to the driver with its fixed Message-ID;
    let mark = w.mark().await;
    w.sessions.sweep().await.unwrap();
    assert_eq!(w.appended(mark).await, ["charge_session.receipt_sent"]);
    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "the same message, retried");
    assert_eq!(sent[1].to, "driver@company.com");
    assert_eq!(sent[1].message_id, format!("<receipt.{id}@chargeledger>"));
    assert_eq!(sent[1].subject, format!("Recibo de recarga — {CHARGER} — R$ 17.00"));
    assert!(sent[1].body.contains("Energia / Energy: 10.000 kWh"), "{}", sent[1].body);
    // and a later sweep sends nothing more.
    let mark = w.mark().await;
    w.sessions.sweep().await.unwrap();
    assert!(w.appended(mark).await.is_empty());
    assert_eq!(w.mailer.sent().len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sweep_cancels_a_session_whose_charger_never_started(pool: PgPool) {
    let w = world_with(pool, SessionConfig { start_timeout: Duration::ZERO, ..SessionConfig::default() });
    // Given a session asked to start before the start deadline, the charger silent, and the queue has it due,
    let (id, state) = w.started_session().await;
    w.queue.answer(due(id));
    let mark = w.mark().await;
    // when the manager sweeps,
    w.sessions.sweep().await.unwrap();
    // then the session is canceled as timed out and its hold voided.
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        [
            "charge_session.canceled",
            "payment_intent.operation_requested",
            "payment_intent.gateway_exchanged",
            "payment_intent.voided"
        ]
    );
    assert_eq!(payload(&events, "charge_session.canceled")["code"], "start_timeout");
    let intent = state.started.as_ref().unwrap().payment_intent_id;
    assert_eq!(w.intent(intent).await.status(), IntentStatus::Canceled);
    assert!(w.queue.asked()[0].start_deadline <= Utc::now());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_start_deadline_is_read_from_the_services_clock(pool: PgPool) {
    let w = world_with(pool, SessionConfig { start_timeout: Duration::from_secs(90), ..SessionConfig::default() });
    // Given a session asked to start just now, the charger silent, and the queue has it due,
    let (id, _) = w.started_session().await;
    w.queue.answer(due(id));
    let mark = w.mark().await;
    // when the manager sweeps within the 90 s, then nothing happens to it;
    w.sessions.sweep().await.unwrap();
    assert!(w.appended(mark).await.is_empty());
    assert_eq!(w.session(id).await.status, SessionStatus::Authorized);
    // when the clock passes the deadline (no waiting: the services read it) and it sweeps again,
    w.clock.advance(Duration::from_secs(91));
    w.queue.answer(due(id));
    w.sessions.sweep().await.unwrap();
    // then the session is canceled as timed out, at the clock's time,
    let events = w.since(mark).await;
    let canceled = payload(&events, "charge_session.canceled");
    assert_eq!(canceled["code"], "start_timeout");
    let at: DateTime<Utc> = serde_json::from_value(canceled["at"].clone()).unwrap();
    assert!(at >= Utc::now() + chrono::Duration::seconds(90), "recorded at {at}, not by the moved clock");
    // and the deadline it asked the queue about is 90 s before the moved clock.
    let asked = w.queue.asked();
    assert!(asked.last().unwrap().start_deadline >= Utc::now(), "{:?}", asked.last().unwrap().start_deadline);
}
