//! The global order against stream order and against read-model transactions
//! (findings 4 and 6 of issue 11), on the test's own database.
#![allow(clippy::unwrap_used)]

mod support;

use chargeledger_commands::{store::CommandRecord, EventStore, ExpectedVersion, StoreError};
use serde_json::json;
use sqlx::PgPool;
use support::*;
use uuid::Uuid;

fn command(id: &str) -> CommandRecord {
    CommandRecord {
        company_id: Uuid::new_v4(),
        command_id: id.into(),
        command_type: "test".into(),
        request_hash: vec![0; 32],
        outcome: json!({}),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_append_after_a_later_transactions_commit_restarts_instead_of_going_before_it(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    // A records its command first, so it has its transaction id...
    let mut a = store.begin().await.unwrap();
    a.record_command(&command("a")).await.unwrap();
    // ...before B, a later transaction, creates the stream.
    let b = store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    // Appending after B's event would put version 2 before version 1 in global order.
    let err = a.append(&write("s-1", ExpectedVersion::Any, vec![new_event(2)])).await.unwrap_err();
    assert!(matches!(err, StoreError::OrderConflict { ref stream_id } if stream_id == "s-1"), "{err}");
    let err = a.append(&write("s-1", ExpectedVersion::Exact(1), vec![new_event(2)])).await.unwrap_err();
    assert!(matches!(err, StoreError::OrderConflict { .. }), "{err}");
    a.rollback().await.unwrap();

    // EventStore::append restarts by itself: a new transaction gets a later id.
    let again = store
        .append(
            &[
                write("s-1", ExpectedVersion::Any, vec![new_event(2)]),
                write("s-2", ExpectedVersion::Any, vec![new_event(3)]),
            ],
            Some(&command("a")),
        )
        .await
        .unwrap();
    assert!(again[0].position > b[0].position);
    let read = read_everything(&store).await;
    let versions: Vec<(String, i64)> = read.iter().map(|e| (e.stream_id.clone(), e.stream_version)).collect();
    assert_eq!(versions, [("s-1".into(), 1), ("s-1".into(), 2), ("s-2".into(), 1)]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stale_predecessor_is_still_a_plain_conflict_inside_a_transaction(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.record_command(&command("t")).await.unwrap();
    // Version 1 exists but not with this hash: the check refuses, and it is no
    // order problem (the predecessor the caller named is not there).
    let wrong = chargeledger_commands::StreamWrite {
        prev_hash: Some([7; 32]),
        ..write("s-1", ExpectedVersion::Exact(1), vec![new_event(2)])
    };
    let err = tx.append(&wrong).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 1, .. }), "{err}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refused_append_with_a_command_records_no_command(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    // One statement (known predecessor) with its command: a stale hash must
    // leave no command behind, or a retry would be answered "done".
    let stale = chargeledger_commands::StreamWrite {
        prev_hash: Some([7; 32]),
        ..write("s-1", ExpectedVersion::Exact(1), vec![new_event(2)])
    };
    let cmd = command("c-1");
    let err = store.append(&[stale], Some(&cmd)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(
        store.find_command(cmd.company_id, "c-1").await.unwrap().is_none(),
        "the command was recorded without its events"
    );
    assert_eq!(read_everything(&store).await.len(), 1);
}

/// A write whose predecessor (version and hash) the caller knows, so the
/// command row can ride in its insert.
fn known(stream: &str, after: &chargeledger_commands::RecordedEvent, n: i64) -> chargeledger_commands::StreamWrite {
    chargeledger_commands::StreamWrite {
        prev_hash: Some(after.hash_array()),
        ..write(stream, ExpectedVersion::Exact(after.stream_version), vec![new_event(n)])
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_multi_stream_command_is_recorded_once_with_its_events_or_not_at_all(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let a = store.append(&[write("s-a", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    let b = store.append(&[write("s-b", ExpectedVersion::NoStream, vec![new_event(2)])], None).await.unwrap();
    let commands =
        || async { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM command_log").fetch_one(&pool).await.unwrap() };

    // The second write is stale: neither stream moves and no command is left
    // behind (its row rode in the first write's insert, rolled back with it).
    let stale = chargeledger_commands::StreamWrite { prev_hash: Some([7; 32]), ..known("s-b", &b[0], 3) };
    let cmd = command("multi-1");
    let err = store.append(&[known("s-a", &a[0], 3), stale], Some(&cmd)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref stream_id, .. } if stream_id == "s-b"), "{err}");
    assert_eq!(commands().await, 0);
    assert_eq!(read_everything(&store).await.len(), 2);

    // Both known: one command row, both streams at version 2.
    let done = store.append(&[known("s-a", &a[0], 4), known("s-b", &b[0], 5)], Some(&cmd)).await.unwrap();
    assert_eq!(done.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [2, 2]);
    assert_eq!(commands().await, 1);
    assert!(store.find_command(cmd.company_id, "multi-1").await.unwrap().is_some());

    // The same command id again (fresh predecessors): a duplicate, nothing appended.
    let (a2, b2) = (&done[0], &done[1]);
    let err = store.append(&[known("s-a", a2, 6), known("s-b", b2, 7)], Some(&cmd)).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateCommand(ref id) if id == "multi-1"), "{err}");
    assert_eq!(read_everything(&store).await.len(), 4);

    // The first write's predecessor is unknown (Any): the row rides in the
    // second's insert; with no known predecessor at all it is recorded first.
    let cmd2 = command("multi-2");
    let any_first = store
        .append(&[write("s-a", ExpectedVersion::Any, vec![new_event(8)]), known("s-b", b2, 9)], Some(&cmd2))
        .await
        .unwrap();
    assert_eq!(any_first.len(), 2);
    let cmd3 = command("multi-3");
    store
        .append(
            &[
                write("s-a", ExpectedVersion::Any, vec![new_event(10)]),
                write("s-c", ExpectedVersion::Any, vec![new_event(11)]),
            ],
            Some(&cmd3),
        )
        .await
        .unwrap();
    assert_eq!(commands().await, 3);
    assert_eq!(read_everything(&store).await.len(), 8);
}

#[sqlx::test(migrations = "../migrations")]
async fn one_transaction_may_append_to_the_same_stream_twice(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut tx = store.begin().await.unwrap();
    tx.append(&write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])).await.unwrap();
    tx.append(&write("s-1", ExpectedVersion::Any, vec![new_event(2)])).await.unwrap();
    tx.append(&write("s-1", ExpectedVersion::Exact(2), vec![new_event(3)])).await.unwrap();
    tx.commit().await.unwrap();
    let read = read_everything(&store).await;
    assert_eq!(read.iter().map(|e| e.stream_version).collect::<Vec<_>>(), [1, 2, 3]);
}

async fn watermark(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT events_watermark()").fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_read_model_transaction_does_not_hold_back_readers(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    // A read-model transaction (a projector batch) with an xid, left open.
    let mut projector = pool.begin().await.unwrap();
    sqlx::query("SELECT events_read_only_transaction()").execute(&mut *projector).await.unwrap();
    let projector_xid: i64 =
        sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(&mut *projector).await.unwrap();
    let after = store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    // (Polled: a transaction that has just ended may still be listed in the
    // snapshot while pg_stat_activity no longer places it in another
    // database, which holds the watermark for a moment.)
    let mut released = false;
    for _ in 0..400 {
        if watermark(&pool).await > projector_xid << 16 && store.read_all(0, 10).await.unwrap().len() == 1 {
            released = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(released, "the open read-model transaction held the reader back");

    // The same without the declaration holds every reader back (the old behaviour).
    let mut plain = pool.begin().await.unwrap();
    let plain_xid: i64 =
        sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(&mut *plain).await.unwrap();
    store.append(&[write("s-2", ExpectedVersion::NoStream, vec![new_event(2)])], None).await.unwrap();
    assert!(watermark(&pool).await <= plain_xid << 16);
    assert!(store.read_all(after[0].position, 10).await.unwrap().is_empty());
    plain.rollback().await.unwrap();
    projector.rollback().await.unwrap();
    assert_eq!(read_everything(&store).await.len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_read_only_transaction_cannot_append_and_must_declare_itself_first(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut tx = store.begin().await.unwrap();
    sqlx::query("SELECT events_read_only_transaction()").execute(tx.conn()).await.unwrap();
    let err = tx.append(&write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])).await.unwrap_err();
    assert!(err.to_string().contains("read-only for the log"), "{err}");
    drop(tx);

    // Declared after its first write, a transaction may already have appended: refused.
    let mut tx = store.begin().await.unwrap();
    tx.append(&write("s-2", ExpectedVersion::NoStream, vec![new_event(2)])).await.unwrap();
    let err = sqlx::query("SELECT events_read_only_transaction()").execute(tx.conn()).await.unwrap_err();
    assert!(err.to_string().contains("before the transaction's first write"), "{err}");
    drop(tx);
    assert!(read_everything(&store).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_declaration_inside_a_savepoint_exempts_nothing(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    // Declared in a savepoint (a nested begin()) that writes and could be
    // rolled back, releasing the lock, before an append: such a transaction
    // has a subtransaction id and keeps holding readers back.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SAVEPOINT s").execute(&mut *tx).await.unwrap();
    sqlx::query("SELECT events_read_only_transaction()").execute(&mut *tx).await.unwrap();
    sqlx::query("INSERT INTO projector_checkpoints (name) VALUES ('savepoint-test')").execute(&mut *tx).await.unwrap();
    let xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(&mut *tx).await.unwrap();
    let later = store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    assert!(later[0].position >> 16 > xid);
    assert!(watermark(&pool).await <= xid << 16);
    assert!(store.read_all(0, 10).await.unwrap().is_empty(), "a revocable declaration let the reader pass");
    sqlx::query("ROLLBACK TO SAVEPOINT s").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(read_everything(&store).await.len(), 1);
}
