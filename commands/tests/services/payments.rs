//! The payment service: card authorization, declines and timeouts, partial
//! capture, wallet holds, top-up refunds, and a replayed command id.

use chargeledger_commands::decision::{self, Ran, Stream};
use domain::{
    payment::{IntentCommand, Operation, PaymentError, PaymentIntent},
    wallet::WalletError,
    Money,
};

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn a_card_authorization_holds_the_amount_and_requires_capture(pool: PgPool) {
    let w = world(pool);
    // Given a card intent of 50.00,
    let id = w.intent_of(PaymentMethod::CreditCard, 5000, None).await;
    let mark = w.mark().await;
    // when it is authorized,
    let state = w.payments.authorize(&actor(), id, card()).await.unwrap();
    // then it waits for capture with the whole amount held on the gateway's charge,
    assert_eq!((state.status(), state.capturable.to_cents()), (IntentStatus::RequiresCapture, Some(5000)));
    let key = format!("{id}:authorize");
    assert_eq!(w.gateway.calls(), [Call::Authorize { intent: id, amount: 5000, key: key.clone() }]);
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        ["payment_intent.operation_requested", "payment_intent.gateway_exchanged", "payment_intent.authorized"]
    );
    assert_eq!(payload(&events, "payment_intent.operation_requested")["idempotencyKey"], key.as_str());
    let authorized = payload(&events, "payment_intent.authorized");
    assert_eq!(
        (authorized["amountCapturable"].as_i64(), authorized["chargeId"].as_str()),
        (Some(5000), state.charge_id.as_deref())
    );
    // and the request went in an append of its own, before the gateway was called.
    assert_ne!(transaction(&events[0]), transaction(&events[1]));
    assert_eq!(transaction(&events[1]), transaction(&events[2]));
    assert_eq!(w.intent_stream(id).await.len(), 4, "created, then the three above");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_declined_card_fails_the_intent_with_the_acquirer_code(pool: PgPool) {
    let w = world(pool);
    // Given a card intent and an issuer that declines with code 51,
    let id = w.intent_of(PaymentMethod::CreditCard, 5000, None).await;
    w.gateway.next(Op::Authorize, Answer::Declined("51"));
    let mark = w.mark().await;
    // when it is authorized,
    let state = w.payments.authorize(&actor(), id, card()).await.unwrap();
    // then the intent failed with the decline and its code,
    assert_eq!(state.status(), IntentStatus::Failed);
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        ["payment_intent.operation_requested", "payment_intent.gateway_exchanged", "payment_intent.operation_failed"]
    );
    let failed = payload(&events, "payment_intent.operation_failed");
    assert_eq!((failed["code"].as_str(), failed["declineCode"].as_str()), (Some("card_declined"), Some("51")));
    // and authorizing it again is refused, without asking the gateway.
    let mark = w.mark().await;
    let again = refusal(w.payments.authorize(&actor(), id, card()).await);
    assert!(
        matches!(
            again,
            DomainError::Payment(PaymentError::WrongStatus {
                operation: Operation::Authorize,
                status: IntentStatus::Failed
            })
        ),
        "{again:?}"
    );
    assert_eq!(w.gateway.calls().len(), 1);
    assert!(w.appended(mark).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_gateway_timeout_leaves_the_intent_processing_and_never_authorizes_twice(pool: PgPool) {
    let w = world(pool);
    // Given a card intent and a gateway that does not answer in time,
    let id = w.intent_of(PaymentMethod::CreditCard, 5000, None).await;
    w.gateway.next(Op::Authorize, Answer::Timeout);
    let mark = w.mark().await;
    // when it is authorized,
    let state = w.payments.authorize(&actor(), id, card()).await.unwrap();
    // then it stays processing with the outcome recorded as unknown,
    assert_eq!(state.status(), IntentStatus::Processing);
    assert_eq!(
        w.appended(mark).await,
        ["payment_intent.operation_requested", "payment_intent.gateway_exchanged", "payment_intent.outcome_unknown"]
    );
    // and a second authorization is refused while it is in flight: the gateway was asked once.
    let mark = w.mark().await;
    let again = refusal(w.payments.authorize(&actor(), id, card()).await);
    assert!(
        matches!(again, DomainError::Payment(PaymentError::OperationInProgress { operation: Operation::Authorize })),
        "{again:?}"
    );
    assert!(matches!(w.gateway.calls()[..], [Call::Authorize { .. }]), "{:?}", w.gateway.calls());
    assert!(w.appended(mark).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn reconciling_a_lost_authorization_looks_it_up_instead_of_sending_it_again(pool: PgPool) {
    let w = world(pool);
    // Given an authorization the gateway made but whose answer was lost,
    let id = w.intent_of(PaymentMethod::CreditCard, 5000, None).await;
    w.gateway.next(Op::Authorize, Answer::ReplyLost);
    assert_eq!(w.payments.authorize(&actor(), id, card()).await.unwrap().status(), IntentStatus::Processing);
    let mark = w.mark().await;
    // when the intent is reconciled,
    let state = w.payments.reconcile(&actor(), id).await.unwrap();
    // then the order is found by its code and the hold recorded; nothing was authorized twice.
    assert_eq!((state.status(), state.capturable.to_cents()), (IntentStatus::RequiresCapture, Some(5000)));
    assert_eq!(w.appended(mark).await, ["payment_intent.gateway_exchanged", "payment_intent.authorized"]);
    let calls = w.gateway.calls();
    assert!(
        matches!(&calls[..], [Call::Authorize { .. }, Call::Find { code }] if *code == id.to_string()),
        "{calls:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_partial_capture_collects_that_amount_and_releases_the_rest(pool: PgPool) {
    let w = world(pool);
    // Given a card hold of 50.00,
    let id = w.authorized_card(5000).await;
    let charge = w.intent(id).await.charge_id.unwrap();
    let mark = w.mark().await;
    // when 17.00 of it is captured,
    let state = w.payments.capture(&actor(), id, Some(Money::from_cents(1700))).await.unwrap();
    // then 17.00 is collected and 33.00 released,
    assert_eq!(state.status(), IntentStatus::Succeeded);
    assert_eq!((state.captured.to_cents(), state.released.to_cents()), (Some(1700), Some(3300)));
    let key = format!("{id}:capture");
    assert_eq!(w.gateway.calls()[1..], [Call::Capture { charge, amount: 1700, key }]);
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        ["payment_intent.operation_requested", "payment_intent.gateway_exchanged", "payment_intent.captured"]
    );
    assert_eq!(payload(&events, "payment_intent.operation_requested")["amount"], 1700);
    let captured = payload(&events, "payment_intent.captured");
    assert_eq!((captured["amountCaptured"].as_i64(), captured["amountReleased"].as_i64()), (Some(1700), Some(3300)));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_capture_above_the_authorized_amount_is_refused_and_appends_nothing(pool: PgPool) {
    let w = world(pool);
    // Given a card hold of 50.00,
    let id = w.authorized_card(5000).await;
    let (mark, logged) = (w.mark().await, w.commands_logged().await);
    // when 60.00 is captured,
    let refused = refusal(w.payments.capture(&actor(), id, Some(Money::from_cents(6000))).await);
    // then the amount is named, nothing is appended or logged and the gateway is not asked,
    match refused {
        DomainError::Payment(PaymentError::Invalid(fields)) => {
            assert_eq!(fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["amount"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(w.appended(mark).await.is_empty());
    assert_eq!(w.commands_logged().await, logged);
    assert_eq!(w.gateway.calls().len(), 1, "only the authorization");
    // and the hold still waits for a capture.
    assert_eq!(w.intent(id).await.status(), IntentStatus::RequiresCapture);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wallet_hold_beyond_the_balance_fails_the_intent_with_insufficient_funds(pool: PgPool) {
    let w = world(pool);
    // Given a wallet topped up with 30.00 and a wallet intent of 50.00,
    w.top_up("ana", 3000).await;
    let id = w.intent_of(PaymentMethod::Wallet, 5000, Some("ana")).await;
    let (mark, calls) = (w.mark().await, w.gateway.calls().len());
    // when it is authorized,
    let state = w.payments.authorize(&actor(), id, AuthorizeInput::default()).await.unwrap();
    // then the intent failed as `insufficient_funds`, the wallet untouched, no gateway asked.
    assert_eq!(state.status(), IntentStatus::Failed);
    let events = w.since(mark).await;
    assert_eq!(types(&events), ["payment_intent.operation_requested", "payment_intent.operation_failed"]);
    assert_eq!(payload(&events, "payment_intent.operation_failed")["code"], "insufficient_funds");
    assert_eq!(w.wallet("ana").await, (3000, 0));
    assert_eq!(w.gateway.calls().len(), calls);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wallet_hold_and_its_partial_capture_move_the_wallet_with_the_intent(pool: PgPool) {
    let w = world(pool);
    // Given a wallet of 100.00 and a wallet intent of 40.00,
    w.top_up("ana", 10_000).await;
    let id = w.intent_of(PaymentMethod::Wallet, 4000, Some("ana")).await;
    let (mark, calls) = (w.mark().await, w.gateway.calls().len());
    // when it is authorized, then 40.00 is held in the intent's own append;
    let held = w.payments.authorize(&actor(), id, AuthorizeInput::default()).await.unwrap();
    assert_eq!(held.status(), IntentStatus::RequiresCapture);
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        ["payment_intent.operation_requested", "payment_intent.authorized", "wallet.hold_placed"]
    );
    assert!(events.iter().all(|e| transaction(e) == transaction(&events[0])));
    assert_eq!(w.wallet("ana").await, (10_000, 4000));
    // when 25.00 is captured, then it leaves the wallet and the rest of the hold is released.
    let mark = w.mark().await;
    let captured = w.payments.capture(&actor(), id, Some(Money::from_cents(2500))).await.unwrap();
    assert_eq!(captured.status(), IntentStatus::Succeeded);
    assert_eq!(
        w.appended(mark).await,
        [
            "payment_intent.operation_requested",
            "payment_intent.captured",
            "wallet.hold_captured",
            "wallet.hold_released"
        ]
    );
    assert_eq!(w.wallet("ana").await, (7500, 0));
    assert_eq!(w.gateway.calls().len(), calls, "a wallet never calls the gateway");
}

#[sqlx::test(migrations = "../migrations")]
async fn refunding_a_top_up_debits_the_wallet_in_the_refund_request_append(pool: PgPool) {
    let w = world(pool);
    // Given a card top-up of 100.00 credited to the wallet,
    let id = w.top_up("ana", 10_000).await;
    assert_eq!(w.wallet("ana").await, (10_000, 0));
    let charge = w.intent(id).await.charge_id.unwrap();
    let mark = w.mark().await;
    // when it is refunded in full,
    let state = w.payments.refund(&actor(), id, None).await.unwrap();
    // then the card is refunded once and the credit leaves the wallet with the request,
    assert_eq!(state.refunded.to_cents(), Some(10_000));
    let calls = w.gateway.calls();
    assert_eq!(calls.last(), Some(&Call::Cancel { charge, amount: Some(10_000), key: format!("{id}:refund:1") }));
    let events = w.since(mark).await;
    assert_eq!(
        types(&events),
        [
            "payment_intent.operation_requested",
            "wallet.debited",
            "payment_intent.gateway_exchanged",
            "payment_intent.refunded"
        ]
    );
    assert_eq!(transaction(&events[0]), transaction(&events[1]), "the debit is in the request's append");
    assert_eq!(payload(&events, "wallet.debited")["amount"], 10_000);
    assert_eq!(w.wallet("ana").await, (0, 0));
}

#[sqlx::test(migrations = "../migrations")]
async fn refunding_a_top_up_whose_credit_is_spent_is_refused_before_the_gateway(pool: PgPool) {
    let w = world(pool);
    // Given a top-up of 100.00 of which 80.00 was spent from the wallet,
    let top_up = w.top_up("ana", 10_000).await;
    let spend = w.intent_of(PaymentMethod::Wallet, 8000, Some("ana")).await;
    w.payments.authorize(&actor(), spend, AuthorizeInput::default()).await.unwrap();
    w.payments.capture(&actor(), spend, None).await.unwrap();
    assert_eq!(w.wallet("ana").await, (2000, 0));
    let (mark, calls, logged) = (w.mark().await, w.gateway.calls().len(), w.commands_logged().await);
    // when the top-up is refunded in full,
    let refused = refusal(w.payments.refund(&actor(), top_up, None).await);
    // then it is refused for the wallet's funds, before anything is appended or the card refunded.
    assert!(
        matches!(refused, DomainError::Wallet(WalletError::InsufficientFunds { available: 2000, asked: 10_000 })),
        "{refused:?}"
    );
    assert!(w.appended(mark).await.is_empty());
    assert_eq!((w.gateway.calls().len(), w.commands_logged().await), (calls, logged));
    assert_eq!(w.intent(top_up).await.status(), IntentStatus::Succeeded);
}

/// `Payments` runs every decision under a fresh command id (a caller's
/// `Idempotency-Key` is honoured by the API's response store), so a replay is
/// exercised on the command path the service uses, with the intent's stream.
#[sqlx::test(migrations = "../migrations")]
async fn a_payment_decision_under_a_replayed_command_id_answers_its_first_outcome(pool: PgPool) {
    let w = world(pool);
    // Given a card hold and a capture request decided under the caller's command id `cap-1`,
    let id = w.authorized_card(5000).await;
    let stream = PaymentIntent::stream_id(id);
    let request = || IntentCommand::Request {
        company_id: COMPANY,
        operation: Operation::Capture,
        amount: Some(Money::from_cents(1700)),
        now: now(),
    };
    let ctx = actor().context(Some("cap-1".into()));
    let run = || {
        decision::run(
            &w.store,
            &ctx,
            "payment_intent.request_capture",
            vec![Stream::of::<PaymentIntent>(&stream)],
            |d| {
                d.decide_all::<PaymentIntent>(&stream, [request()])?;
                Ok(d.state::<PaymentIntent>(&stream)?.status())
            },
            |status| serde_json::json!({ "status": status.as_str() }),
        )
    };
    let first = run().await.unwrap();
    assert!(matches!(&first, Ran::Decided { events, .. } if events.len() == 1));
    let (mark, logged) = (w.mark().await, w.commands_logged().await);
    // when the same command id comes again (deciding it anew would be refused: a capture is in flight),
    let again = run().await.unwrap();
    // then it answers the first outcome, and appends and logs nothing.
    assert!(matches!(&again, Ran::Replayed(answer) if answer["status"] == "processing"), "{:?}", again.answer());
    assert_eq!(again.answer(), first.answer());
    assert!(w.appended(mark).await.is_empty());
    assert_eq!(w.commands_logged().await, logged);
}
