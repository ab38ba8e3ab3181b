//! Idempotent commands: the same command id gives the first outcome, a refused
//! command appends nothing, concurrent duplicates replay.

use super::*;

#[sqlx::test(migrations = "../migrations")]
async fn the_same_command_id_twice_gives_the_first_outcome_and_one_set_of_events(pool: PgPool) {
    let store = EventStore::new(wide_pool(&pool, 12).await);
    let company = Uuid::new_v4();
    let id = TerminalId::parse("EVSE-IDEM").unwrap();
    let first = terminals::handle(&store, &ctx(company, Some("key-1"), "body"), &id, register(company, "EVSE-IDEM"))
        .await
        .unwrap();
    let again = terminals::handle(&store, &ctx(company, Some("key-1"), "body"), &id, register(company, "EVSE-IDEM"))
        .await
        .unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(first.outcome, again.outcome);
    assert!(again.events.is_empty());

    let other =
        terminals::handle(&store, &ctx(company, Some("key-1"), "another body"), &id, register(company, "EVSE-IDEM"))
            .await;
    assert!(matches!(other, Err(CommandError::IdempotencyMismatch(_))), "{other:?}");

    // Concurrent duplicates of a status change: exactly one takes effect.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let command = TerminalCommand::ChangeStatus(ChangeStatus {
                company_id: CompanyId(company),
                status: TerminalStatus::Available,
                reason: None,
                now: chrono::Utc::now(),
            });
            terminals::handle(&store, &ctx(company, Some("key-2"), "status"), &id, command).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| !o.replayed).count(), 1);
    assert!(outcomes.windows(2).all(|w| w[0].outcome == w[1].outcome));
    assert_eq!(store.read_stream("terminal-EVSE-IDEM").await.unwrap().len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refused_command_appends_nothing(pool: PgPool) {
    let store = EventStore::new(pool);
    let company = Uuid::new_v4();
    let id = TerminalId::parse("EVSE-X").unwrap();
    let command = TerminalCommand::ChangeStatus(ChangeStatus {
        company_id: CompanyId(company),
        status: TerminalStatus::Available,
        reason: None,
        now: chrono::Utc::now(),
    });
    let err = terminals::handle(&store, &ctx(company, Some("k"), "x"), &id, command).await.unwrap_err();
    assert!(matches!(err, CommandError::Domain(DomainError::Terminal(domain::terminal::TerminalError::NotFound))));
    assert!(read_everything(&store).await.is_empty());
    assert!(store.find_command(company, "k").await.unwrap().is_none());
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_duplicates_of_a_registration_all_get_the_first_outcome(pool: PgPool) {
    let store = EventStore::new(wide_pool(&pool, 12).await);
    let company = Uuid::new_v4();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = TerminalId::parse("EVSE-DUP").unwrap();
            terminals::handle(&store, &ctx(company, Some("same-key"), "same body"), &id, register(company, "EVSE-DUP"))
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap().expect("a duplicate must replay, not fail"));
    }
    assert_eq!(outcomes.iter().filter(|o| !o.replayed).count(), 1);
    assert!(outcomes.windows(2).all(|w| w[0].outcome == w[1].outcome));
    assert_eq!(store.read_stream("terminal-EVSE-DUP").await.unwrap().len(), 1);
}

/// A stream at a fixed version (a charger command's `sent`) keeps that version
/// when the decision is retried for a conflict on another stream (the
/// connection's frames): a second connection that lost the race must not send
/// the command again at the next free version.
#[sqlx::test(migrations = "../migrations")]
async fn a_fixed_version_stream_is_not_re_read_when_another_stream_conflicts(pool: PgPool) {
    use chargeledger_commands::decision::{self, Stream};
    let store = EventStore::new(pool);
    let company = Uuid::new_v4();
    // The command was requested (version 1), and its frames stream has a frame.
    store.append(&[write("cmd-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    store.append(&[write("frames-1", ExpectedVersion::NoStream, vec![new_event(2)])], None).await.unwrap();
    // The winner: its `sent` at version 2, with its frame.
    store
        .append(
            &[
                write("frames-1", ExpectedVersion::Exact(1), vec![new_event(2)]),
                write("cmd-1", ExpectedVersion::Exact(1), vec![new_event(3)]),
            ],
            None,
        )
        .await
        .unwrap();
    // The loser still believes the frames are at 1: its first attempt
    // conflicts there; the retry must then meet the command's conflict.
    let loser = decision::run(
        &store,
        &ctx(company, None, "send"),
        "ocpp.command_sent",
        vec![Stream::tip("frames-1", 1, None), Stream::at("cmd-1", 1)],
        |d| {
            d.record_new("frames-1", [new_event(2)])?;
            d.record_new("cmd-1", [new_event(3)])
        },
        |_| serde_json::Value::Null,
    )
    .await;
    assert!(
        matches!(&loser, Err(CommandError::Store(StoreError::Conflict { stream_id, .. })) if stream_id == "cmd-1"),
        "{loser:?}"
    );
    let versions: Vec<i64> = store.read_stream("cmd-1").await.unwrap().iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![1, 2], "sent once");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_command_that_decides_nothing_leaves_no_command_behind(pool: PgPool) {
    use chargeledger_commands::decision::{self, Stream};
    let store = EventStore::new(pool);
    let company = Uuid::new_v4();
    store.append(&[write("frames-2", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    // A charger's command (optimistic: its id is fresh) that decides nothing,
    // as a stale connection's disconnection does: nothing is recorded.
    let ran = decision::run_optimistic_as::<_, CommandError>(
        &store,
        &ctx(company, Some("ocpp-noop"), "noop"),
        "ocpp.disconnect",
        vec![Stream::tip("frames-2", 1, None)],
        |_| Ok(()),
        |_| serde_json::Value::Null,
    )
    .await
    .unwrap();
    assert!(ran.events().is_empty());
    assert!(store.find_command(company, "ocpp-noop").await.unwrap().is_none());
    // The same with a caller-given (repeatable, looked-up) id is recorded: a
    // repeat must get this answer, not another decision.
    decision::run(
        &store,
        &ctx(company, Some("rest-noop"), "noop"),
        "terminal.noop",
        vec![Stream::tip("frames-2", 1, None)],
        |_| Ok(()),
        |_| serde_json::Value::Null,
    )
    .await
    .unwrap();
    assert!(store.find_command(company, "rest-noop").await.unwrap().is_some());
    assert_eq!(read_everything(&store).await.len(), 1);
}
