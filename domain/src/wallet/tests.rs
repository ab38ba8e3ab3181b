//! Given / when / then tests of wallets.

use chrono::TimeZone;

use super::*;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().unwrap_or_default()
}

fn run(state: &mut WalletState, command: WalletCommand) -> Result<(), WalletError> {
    let events = Wallet::decide(state, command)?;
    *state = events.iter().fold(std::mem::take(state), Wallet::evolve);
    Ok(())
}

#[test]
fn holds_capture_and_release_and_the_balance_never_goes_negative() {
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let mut w = WalletState::default();
    let credit = WalletCommand::Credit {
        company_id: CompanyId(Uuid::nil()),
        customer_id: "c".into(),
        amount: 10_000,
        source_intent_id: Uuid::nil(),
        at: at(),
    };
    run(&mut w, credit).unwrap_or_default();
    run(&mut w, WalletCommand::Hold { intent_id: a, amount: 6_000, at: at() }).unwrap_or_default();
    assert_eq!(w.available(), 4_000);
    let too_much = run(&mut w, WalletCommand::Hold { intent_id: b, amount: 4_001, at: at() });
    assert!(
        matches!(too_much, Err(WalletError::InsufficientFunds { available: 4_000, asked: 4_001 })),
        "never negative"
    );
    run(&mut w, WalletCommand::Capture { intent_id: a, amount: 2_500, at: at() }).unwrap_or_default();
    assert_eq!((w.balance, w.available(), w.holds.len()), (7_500, 7_500, 0), "the rest of the hold is released");
    run(&mut w, WalletCommand::Hold { intent_id: b, amount: 7_500, at: at() }).unwrap_or_default();
    run(&mut w, WalletCommand::Release { intent_id: b, at: at() }).unwrap_or_default();
    assert_eq!((w.balance, w.available()), (7_500, 7_500));
}

fn credited(amount: i64) -> WalletState {
    let mut w = WalletState::default();
    let credit = WalletCommand::Credit {
        company_id: CompanyId(Uuid::nil()),
        customer_id: "c".into(),
        amount,
        source_intent_id: Uuid::from_u128(9),
        at: at(),
    };
    run(&mut w, credit).unwrap_or_default();
    w
}

#[test]
fn a_refund_debit_takes_only_what_is_available_and_a_reversal_gives_it_back() {
    let (top_up, spent) = (Uuid::from_u128(9), Uuid::from_u128(1));
    let mut w = credited(10_000);
    run(&mut w, WalletCommand::Hold { intent_id: spent, amount: 3_000, at: at() }).unwrap_or_default();
    let too_much = WalletCommand::Debit { source_intent_id: top_up, amount: 7_001, at: at() };
    assert_eq!(
        Wallet::decide(&w, too_much),
        Err(WalletError::InsufficientFunds { available: 7_000, asked: 7_001 }),
        "held money cannot be refunded"
    );
    run(&mut w, WalletCommand::Debit { source_intent_id: top_up, amount: 7_000, at: at() }).unwrap_or_default();
    assert_eq!((w.balance, w.available()), (3_000, 0));
    let over = WalletCommand::ReverseDebit { source_intent_id: top_up, amount: 7_001, at: at() };
    assert!(
        matches!(Wallet::decide(&w, over), Err(WalletError::NotDebited { amount: 7_001, debited: 7_000 })),
        "only what was debited"
    );
    run(&mut w, WalletCommand::ReverseDebit { source_intent_id: top_up, amount: 7_000, at: at() }).unwrap_or_default();
    assert_eq!((w.balance, w.available(), w.debits.len()), (10_000, 7_000, 0));
}

#[test]
fn a_hold_beyond_the_available_balance_is_refused_as_insufficient_funds() {
    // Given a wallet credited 5,000 cents with 2,000 held.
    let mut w = credited(5_000);
    run(&mut w, WalletCommand::Hold { intent_id: Uuid::from_u128(1), amount: 2_000, at: at() }).unwrap_or_default();
    // When another intent asks to hold 3,001.
    let err =
        Wallet::decide(&w, WalletCommand::Hold { intent_id: Uuid::from_u128(2), amount: 3_001, at: at() }).unwrap_err();
    // Then it is refused with what is available and what was asked.
    assert!(matches!(err, WalletError::InsufficientFunds { available: 3_000, asked: 3_001 }), "{err:?}");
    assert_eq!(err.to_string(), "insufficient funds: 3000 cents available, 3001 asked");
    let again = WalletCommand::Hold { intent_id: Uuid::from_u128(1), amount: 1, at: at() };
    assert!(matches!(Wallet::decide(&w, again), Err(WalletError::AlreadyHeld)));
    let nothing_held = WalletCommand::Capture { intent_id: Uuid::from_u128(3), amount: 1, at: at() };
    assert!(matches!(Wallet::decide(&w, nothing_held), Err(WalletError::NoHold)));
}
