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
