//! Given / when / then tests of charge sessions.

use chrono::{TimeZone, Utc};

use super::*;
use crate::{payment::PaymentMethod, DomainEvent};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().unwrap_or_default()
}

fn start() -> SessionStarted {
    SessionStarted {
        session_id: Uuid::from_u128(1),
        company_id: Uuid::from_u128(2),
        kind: SessionKind::Ocpp,
        station_id: 10,
        charge_point_id: "EVSE-001".into(),
        connector_id: 1,
        method: PaymentMethod::CreditCard,
        preauth_amount: 5000,
        email: "driver@company.com".into(),
        cpf: Some("52998224725".into()),
        tariff: Tariff { price_per_kwh: Decimal::new(150, 2), fixed_connection_cost: Decimal::new(200, 2) },
        payment_intent_id: Uuid::from_u128(3),
        id_tag: "CL00000001".into(),
        at: at(),
        customer_id: None,
    }
}

fn run(s: &mut SessionState, c: SessionCommand) -> Vec<SessionEvent> {
    let events = ChargeSession::decide(s, c).unwrap_or_else(|e| panic!("{e}"));
    *s = events.iter().fold(std::mem::take(s), ChargeSession::evolve);
    events
}

fn charging() -> SessionState {
    let mut s = SessionState::default();
    run(&mut s, SessionCommand::Start(start()));
    run(&mut s, SessionCommand::PaymentAuthorized { amount: 5000, at: at() });
    run(
        &mut s,
        SessionCommand::ChargingStarted(ChargingStarted { transaction_id: "1".into(), meter_start_wh: 1000, at: at() }),
    );
    s
}

#[test]
fn the_cost_is_fixed_plus_price_times_kwh_rounded_once() {
    let t = start().tariff;
    assert_eq!(cost(&t, 10_891), (Decimal::new(1833650, 5), 1834)); // 2.00 + 1.50 × 10.891 = 18.3365 → 18.34
    assert_eq!(cost(&t, 0).1, 200);
}

#[test]
fn a_stop_settles_for_the_energy_delivered_and_releases_the_rest() {
    let mut s = charging();
    run(&mut s, SessionCommand::Progress { energy_wh: 4000, at: at() });
    assert_eq!(s.cost_cents, 800);
    run(&mut s, SessionCommand::RequestStop(Reason { code: "driver".into(), detail: "stop".into(), at: at() }));
    assert_eq!(s.status, SessionStatus::Stopping);
    let events = run(&mut s, SessionCommand::ChargingStopped { energy_wh: 10_891, at: at() });
    let SessionEvent::SettlementComputed(st) = &events[1] else { panic!("{events:?}") };
    assert_eq!((st.cost_cents, st.capture_cents, st.release_cents), (1834, 1834, 3166));
    run(&mut s, SessionCommand::Settled(Settled { captured_cents: 1834, released_cents: 3166, at: at() }));
    assert_eq!(s.status, SessionStatus::Completed);
    // Repeats change nothing.
    assert!(ChargeSession::decide(&s, SessionCommand::ChargingStopped { energy_wh: 20_000, at: at() })
        .unwrap_or_default()
        .is_empty());
    assert!(ChargeSession::decide(
        &s,
        SessionCommand::RequestStop(Reason { code: "driver".into(), detail: String::new(), at: at() })
    )
    .unwrap_or_default()
    .is_empty());
}

#[test]
fn reaching_the_authorized_amount_stops_the_charge_and_captures_no_more() {
    let mut s = charging();
    let events = run(&mut s, SessionCommand::Progress { energy_wh: 32_000, at: at() }); // 2 + 48 = R$ 50.00
    assert_eq!(
        events.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        ["charge_session.progress_recorded", "charge_session.stop_requested"]
    );
    let events = run(&mut s, SessionCommand::ChargingStopped { energy_wh: 32_400, at: at() });
    let SessionEvent::SettlementComputed(st) = &events[1] else { panic!() };
    assert_eq!((st.cost_cents, st.capture_cents, st.release_cents), (5060, 5000, 0));
}

#[test]
fn stopping_before_charging_cancels_and_meter_values_never_go_back() {
    let mut s = SessionState::default();
    run(&mut s, SessionCommand::Start(start()));
    run(&mut s, SessionCommand::PaymentAuthorized { amount: 5000, at: at() });
    let events =
        run(&mut s, SessionCommand::RequestStop(Reason { code: "driver".into(), detail: String::new(), at: at() }));
    assert_eq!(events[0].event_type(), "charge_session.canceled");
    assert!(ChargeSession::decide(
        &s,
        SessionCommand::ChargingStarted(ChargingStarted { transaction_id: "9".into(), meter_start_wh: 0, at: at() })
    )
    .unwrap_or_default()
    .is_empty());
    let mut s = charging();
    run(&mut s, SessionCommand::Progress { energy_wh: 3000, at: at() });
    assert!(run(&mut s, SessionCommand::Progress { energy_wh: 2000, at: at() }).is_empty());
}

#[test]
fn refunds_retry_then_dead_letter_and_receipts_go_once() {
    let mut s = charging();
    run(&mut s, SessionCommand::RequestRefund(Amount { amount: 700, reason: Some("overcharge".into()), at: at() }));
    let retry = Attempt { attempt: 1, reason: "502".into(), next_attempt_at: Some(at()), at: at() };
    assert_eq!(run(&mut s, SessionCommand::RefundFailed(retry))[0].event_type(), "charge_session.refund_failed");
    let last = Attempt { attempt: 7, reason: "502".into(), next_attempt_at: None, at: at() };
    assert_eq!(run(&mut s, SessionCommand::RefundFailed(last))[0].event_type(), "charge_session.refund_dead_lettered");
    assert!(s.refund_dead && s.refund_pending == 0);

    let mut s = charging();
    run(&mut s, SessionCommand::ChargingStopped { energy_wh: 1000, at: at() });
    run(&mut s, SessionCommand::Settled(Settled { captured_cents: 350, released_cents: 4650, at: at() }));
    let receipt = ReceiptSent { to: "driver@company.com".into(), message_id: "<1@x>".into(), at: at() };
    assert_eq!(run(&mut s, SessionCommand::ReceiptSent(receipt.clone())).len(), 1);
    assert!(run(&mut s, SessionCommand::ReceiptSent(receipt)).is_empty(), "exactly once");
}

#[test]
fn invalid_starts_name_the_fields() {
    let mut bad = start();
    bad.preauth_amount = 0;
    bad.email = "nope".into();
    bad.cpf = Some("12345678900".into());
    bad.tariff.price_per_kwh = Decimal::new(-1, 0);
    let Err(SessionError::Invalid(fields)) =
        ChargeSession::decide(&SessionState::default(), SessionCommand::Start(bad))
    else {
        panic!()
    };
    assert_eq!(
        fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
        ["amount", "email", "cpf", "charger.price"]
    );
}

#[test]
fn a_start_is_checked_by_one_set_of_rules_with_the_payments_e_mail_rule() {
    // Given a start's fields, when they break the rules, then each is named once with its message.
    let ok = start();
    let fields = |f: StartFields<'_>| {
        start_errors(f).into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>()
    };
    assert!(fields(StartFields::from(&ok)).is_empty());
    let bad = StartFields {
        amount: 0,
        email: "driver@company",
        price_per_kwh: Some(Decimal::new(-1, 0)),
        fixed_connection_cost: None,
        ..StartFields::from(&ok)
    };
    assert_eq!(
        fields(bad),
        [
            "amount: must be above zero (cents)",
            "email: is not a valid e-mail address",
            "charger.price: must not be below zero"
        ]
    );
    let high = StartFields {
        amount: 10_000_001,
        email: "driver@.company.com",
        price_per_kwh: Some(Decimal::new(101, 0)),
        fixed_connection_cost: Some(Decimal::new(1001, 0)),
        ..StartFields::from(&ok)
    };
    assert_eq!(
        fields(high),
        [
            "amount: must be 1 to 10000000 cents",
            "email: is not a valid e-mail address",
            "charger.price: must be between 0 and 100 reais per kWh",
            "charger.fixed_connection_cost: must be between 0 and 1000 reais"
        ]
    );
    // The session and the payment agree on e-mail addresses.
    for email in ["driver@company.com", "x@y", "@company.com", "driver@.company.com", "a b@c.com", "driver@company."] {
        assert_eq!(
            fields(StartFields { email, ..StartFields::from(&ok) }).is_empty(),
            crate::payment::email_valid(email),
            "{email}"
        );
    }
    let offline = SessionError::ChargerOffline { charge_point_id: "EVSE-1".into() };
    assert_eq!(offline.to_string(), "EVSE-1 is offline: nothing was authorized");
    assert_eq!(offline.kind(), crate::RefusalKind::Conflict);
}

#[test]
fn a_session_starts_once_and_unknown_sessions_are_not_found() {
    // Given a started session, when it is started again, then it is refused.
    let mut s = SessionState::default();
    run(&mut s, SessionCommand::Start(start()));
    let again = ChargeSession::decide(&s, SessionCommand::Start(start())).unwrap_err();
    assert!(matches!(again, SessionError::AlreadyStarted), "{again:?}");
    assert_eq!(again.to_string(), "charge session already started");
    // Given no session, when a refund is asked, then there is no such session.
    let refund = SessionCommand::RequestRefund(Amount { amount: 100, reason: None, at: at() });
    let missing = ChargeSession::decide(&SessionState::default(), refund).unwrap_err();
    assert!(matches!(missing, SessionError::NotFound), "{missing:?}");
    assert_eq!(missing.to_string(), "charge session not found");
    let wrong = SessionError::NotInState { status: SessionStatus::Canceled };
    assert_eq!(wrong.to_string(), "the session is CANCELED");
}
