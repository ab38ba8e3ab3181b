//! Given / when / then tests of payment intents, and a property test of the
//! money invariants and the state machine.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::DomainEvent;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().unwrap_or_default()
}

fn acme() -> CompanyId {
    CompanyId(Uuid::from_u128(1))
}

fn create(method: PaymentMethod, cents: i64) -> IntentCommand {
    IntentCommand::Create {
        intent_id: Uuid::from_u128(42),
        company_id: acme(),
        amount: Money::from_cents(cents),
        method,
        customer: Customer {
            customer_id: Some("cust-1".into()),
            name: None,
            email: Some("driver@company.com".into()),
            cpf: Some("52998224725".into()),
        },
        description: None,
        top_up_wallet: None,
        now: now(),
    }
}

fn request(op: Operation, amount: Option<i64>) -> IntentCommand {
    IntentCommand::Request { company_id: acme(), operation: op, amount: amount.map(Money::from_cents), now: now() }
}

fn settle(op: Operation, outcome: Settlement) -> IntentCommand {
    IntentCommand::Settle { company_id: acme(), operation: op, outcome, now: now() }
}

fn authorized(cents: i64) -> Settlement {
    Settlement::Authorized {
        amount_capturable: Money::from_cents(cents),
        order_id: Some("or_1".into()),
        charge_id: Some("ch_1".into()),
        already_collected: false,
    }
}

fn run(state: &mut IntentState, command: IntentCommand) -> Result<Vec<PaymentIntentEvent>, PaymentError> {
    let events = PaymentIntent::decide(state, command)?;
    *state = events.iter().fold(std::mem::take(state), PaymentIntent::evolve);
    Ok(events)
}

fn cents(m: Money) -> i64 {
    m.to_cents().unwrap_or_default()
}

#[test]
fn a_card_is_pre_authorized_then_partially_captured_and_the_rest_released() {
    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::CreditCard, 5000)).unwrap_or_default();
    assert_eq!(s.status(), IntentStatus::RequiresAuthorization);
    run(&mut s, request(Operation::Authorize, None)).unwrap_or_default();
    assert_eq!(s.status(), IntentStatus::Processing);
    assert!(run(&mut s, request(Operation::Authorize, None)).is_err(), "never a second authorize");
    run(&mut s, settle(Operation::Authorize, authorized(5000))).unwrap_or_default();
    assert_eq!((s.status(), cents(s.capturable)), (IntentStatus::RequiresCapture, 5000));
    assert!(run(&mut s, request(Operation::Capture, Some(5001))).is_err(), "not above amount_capturable");
    run(&mut s, request(Operation::Capture, Some(1837))).unwrap_or_default();
    let events = run(
        &mut s,
        settle(
            Operation::Capture,
            Settlement::Captured { amount: Money::from_cents(1837), refunded: Money::default() },
        ),
    )
    .unwrap_or_default();
    assert!(
        matches!(&events[0], PaymentIntentEvent::Captured(c) if c.amount_captured == 1837 && c.amount_released == 3163)
    );
    assert_eq!(s.status(), IntentStatus::Succeeded);
}

#[test]
fn a_decline_fails_the_intent_and_nothing_can_be_captured() {
    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::CreditCard, 5000)).unwrap_or_default();
    run(&mut s, request(Operation::Authorize, None)).unwrap_or_default();
    let decline = Settlement::Failed {
        code: "card_declined".into(),
        reason: "Insufficient funds".into(),
        decline_code: Some("51".into()),
    };
    run(&mut s, settle(Operation::Authorize, decline)).unwrap_or_default();
    assert_eq!(s.status(), IntentStatus::Failed);
    assert!(run(&mut s, request(Operation::Capture, None)).is_err());
}

#[test]
fn void_before_authorization_needs_no_gateway_and_void_after_needs_one() {
    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::CreditCard, 5000)).unwrap_or_default();
    let events = run(&mut s, request(Operation::Void, None)).unwrap_or_default();
    assert_eq!(events[0].event_type(), "payment_intent.voided");
    assert_eq!(s.status(), IntentStatus::Canceled);

    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::CreditCard, 5000)).unwrap_or_default();
    run(&mut s, request(Operation::Authorize, None)).unwrap_or_default();
    run(&mut s, settle(Operation::Authorize, authorized(5000))).unwrap_or_default();
    run(&mut s, request(Operation::Void, None)).unwrap_or_default();
    assert_eq!(s.status(), IntentStatus::Processing);
    run(&mut s, settle(Operation::Void, Settlement::Voided)).unwrap_or_default();
    assert_eq!((s.status(), cents(s.released)), (IntentStatus::Canceled, 5000));
}

#[test]
fn vip_is_sponsored_without_a_gateway() {
    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::Vip, 5000)).unwrap_or_default();
    run(&mut s, request(Operation::Authorize, None)).unwrap_or_default();
    assert!(s.sponsored);
    assert_eq!(s.status(), IntentStatus::RequiresCapture);
}

#[test]
fn pix_is_collected_when_paid_and_a_smaller_capture_refunds_the_rest() {
    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::Pix, 5000)).unwrap_or_default();
    run(&mut s, request(Operation::Authorize, None)).unwrap_or_default();
    let pix = PixQrIssued {
        order_id: "or_p".into(),
        charge_id: "ch_p".into(),
        qr_code: "000201...".into(),
        qr_code_url: None,
        expires_at: now(),
    };
    run(&mut s, settle(Operation::Authorize, Settlement::PixIssued(pix))).unwrap_or_default();
    assert_eq!(s.status(), IntentStatus::Processing);
    let paid = Settlement::Authorized {
        amount_capturable: Money::from_cents(5000),
        order_id: None,
        charge_id: None,
        already_collected: true,
    };
    run(&mut s, settle(Operation::Authorize, paid)).unwrap_or_default();
    assert_eq!(s.charge_id.as_deref(), Some("ch_p"));
    run(&mut s, request(Operation::Capture, Some(3000))).unwrap_or_default();
    let events = run(
        &mut s,
        settle(
            Operation::Capture,
            Settlement::Captured { amount: Money::from_cents(3000), refunded: Money::from_cents(2000) },
        ),
    )
    .unwrap_or_default();
    assert_eq!(
        events.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        ["payment_intent.captured", "payment_intent.refunded"]
    );
    assert_eq!((cents(s.captured), cents(s.released), cents(s.refunded)), (3000, 0, 2000));
}

#[test]
fn an_unknown_outcome_keeps_the_intent_processing() {
    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::CreditCard, 5000)).unwrap_or_default();
    run(&mut s, request(Operation::Authorize, None)).unwrap_or_default();
    run(&mut s, settle(Operation::Authorize, Settlement::Unknown { reason: "timeout".into() })).unwrap_or_default();
    assert_eq!(s.status(), IntentStatus::Processing);
    assert!(run(&mut s, request(Operation::Authorize, None)).is_err());
}

#[test]
fn invalid_creation_names_the_fields_and_other_companies_see_nothing() {
    let bad = IntentCommand::Create {
        intent_id: Uuid::from_u128(1),
        company_id: acme(),
        amount: Money::from_cents(0),
        method: PaymentMethod::Wallet,
        customer: Customer {
            customer_id: None,
            name: None,
            email: Some("nope".into()),
            cpf: Some("12345678900".into()),
        },
        description: None,
        top_up_wallet: None,
        now: now(),
    };
    let Err(PaymentError::Invalid(fields)) = PaymentIntent::decide(&IntentState::default(), bad) else {
        panic!("expected validation")
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["amount", "cpf", "email", "customerId"]);
    let mut s = IntentState::default();
    run(&mut s, create(PaymentMethod::CreditCard, 5000)).unwrap_or_default();
    let other = IntentCommand::Request {
        company_id: CompanyId(Uuid::from_u128(2)),
        operation: Operation::Authorize,
        amount: None,
        now: now(),
    };
    assert_eq!(PaymentIntent::decide(&s, other), Err(PaymentError::NotFound));
}

/// Given an intent whose authorization was requested and settled.
fn authorized_intent() -> IntentState {
    let mut s = IntentState::default();
    for command in [
        create(PaymentMethod::CreditCard, 5000),
        request(Operation::Authorize, None),
        settle(Operation::Authorize, authorized(5000)),
    ] {
        run(&mut s, command).unwrap_or_default();
    }
    s
}

#[test]
fn settling_an_operation_that_was_settled_meanwhile_is_refused_as_no_operation_in_progress() {
    let s = authorized_intent();
    let err = PaymentIntent::decide(&s, settle(Operation::Authorize, authorized(5000))).unwrap_err();
    assert!(matches!(err, PaymentError::NoOperationInProgress), "{err:?}");
    assert_eq!(err.to_string(), "no such operation in progress");
}

#[test]
fn a_second_operation_while_one_is_in_flight_is_refused_naming_it() {
    let mut s = authorized_intent();
    run(&mut s, request(Operation::Capture, Some(1000))).unwrap_or_default();
    let err = PaymentIntent::decide(&s, request(Operation::Refund, None)).unwrap_err();
    assert!(matches!(err, PaymentError::OperationInProgress { operation: Operation::Capture }), "{err:?}");
    assert_eq!(err.to_string(), "a capture is in progress; try again when it settles");
}

#[test]
fn an_operation_the_status_does_not_allow_is_refused_with_the_status() {
    let s = authorized_intent();
    let err = PaymentIntent::decide(&s, request(Operation::Refund, None)).unwrap_err();
    assert!(
        matches!(
            err,
            PaymentError::WrongStatus { operation: Operation::Refund, status: IntentStatus::RequiresCapture }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "cannot refund a payment intent that is requires_capture");
    let wrong_outcome = settle(Operation::Authorize, Settlement::Voided);
    let mut pending = authorized_intent();
    run(&mut pending, request(Operation::Void, None)).unwrap_or_default();
    assert!(matches!(PaymentIntent::decide(&pending, wrong_outcome), Err(PaymentError::NoOperationInProgress)));
    let mismatch = settle(Operation::Void, Settlement::Refunded { amount: Money::from_cents(1) });
    assert!(matches!(PaymentIntent::decide(&pending, mismatch), Err(PaymentError::OutcomeMismatch)));
}

#[test]
fn cpf_check_digits() {
    assert!(decide::cpf_valid("529.982.247-25"));
    assert!(!decide::cpf_valid("529.982.247-24"));
    assert!(!decide::cpf_valid("11111111111"));
    assert!(!decide::cpf_valid("123"));
}

fn step() -> impl Strategy<Value = (u8, u8, i64)> {
    (0u8..4, 0u8..8, 0i64..12_000)
}

fn command_for(kind: u8, outcome: u8, n: i64, state: &IntentState) -> IntentCommand {
    let op = [Operation::Authorize, Operation::Capture, Operation::Void, Operation::Refund][usize::from(kind)];
    let m = Money::from_cents(n);
    match outcome {
        0 => request(op, None),
        1 => request(op, Some(n)),
        2 => settle(
            op,
            Settlement::Authorized {
                amount_capturable: m,
                order_id: None,
                charge_id: None,
                already_collected: n % 2 == 0,
            },
        ),
        3 => settle(
            op,
            Settlement::Captured {
                amount: state.pending.as_ref().map_or(m, |p| p.amount),
                refunded: Money::from_cents(n % 3000),
            },
        ),
        4 => settle(op, Settlement::Voided),
        5 => settle(op, Settlement::Refunded { amount: state.pending.as_ref().map_or(m, |p| p.amount) }),
        6 => settle(op, Settlement::Failed { code: "x".into(), reason: "x".into(), decline_code: None }),
        _ => settle(op, Settlement::Unknown { reason: "timeout".into() }),
    }
}

fn allowed(from: IntentStatus, to: IntentStatus) -> bool {
    use IntentStatus::*;
    from == to
        || matches!(
            (from, to),
            (RequiresAuthorization, Processing | RequiresCapture | Canceled)
                | (Processing, RequiresCapture | Succeeded | Canceled | Failed | Expired)
                | (RequiresCapture, Processing)
                | (Succeeded, Processing)
        )
}

proptest! {
    #[test]
    fn money_never_exceeds_what_was_authorized(method in 0u8..6, amount in 1i64..10_000, steps in proptest::collection::vec(step(), 1..40)) {
        let method = [PaymentMethod::CreditCard, PaymentMethod::GooglePay, PaymentMethod::ApplePay, PaymentMethod::Pix, PaymentMethod::Wallet, PaymentMethod::Vip][usize::from(method)];
        let mut s = IntentState::default();
        prop_assert!(run(&mut s, create(method, amount)).is_ok());
        for (kind, outcome, n) in steps {
            let before = s.status();
            let command = command_for(kind, outcome, n, &s);
            let _ = run(&mut s, command); // a refused command changes nothing
            let after = s.status();
            prop_assert!(allowed(before, after), "{:?} -> {:?}", before, after);
            let total = s.captured.amount() + s.released.amount() + s.refunded.amount();
            prop_assert!(total <= s.authorized.amount(), "captured {} + released {} + refunded {} > authorized {}", cents(s.captured), cents(s.released), cents(s.refunded), cents(s.authorized));
            prop_assert!(s.authorized.amount() <= Money::from_cents(amount).amount());
            prop_assert!(s.capturable.amount() >= rust_decimal::Decimal::ZERO);
        }
    }
}
