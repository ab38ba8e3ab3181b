//! The event log against a real Postgres: append-only, optimistic concurrency,
//! gap-free global order under concurrent writers with rollbacks, idempotent
//! commands, and tamper evidence.
#![allow(clippy::unwrap_used)]

mod support;

use std::{
    collections::{BTreeSet, HashSet},
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use chargeledger_commands::{
    audit::{self, FindingKind, VerifyOptions},
    hashing::{event_hash, parse_hex_hash, HashedFields, ZERO_HASH},
    seal, terminals, CommandError, EventStore, ExpectedVersion, RecordedEvent, StoreError,
};
use domain::{
    terminal::{ChangeStatus, TerminalCommand, TerminalStatus},
    CompanyId, DomainError, TerminalId,
};
use rand::Rng;
use sqlx::PgPool;
use support::*;
use tokio::sync::Mutex;
use uuid::Uuid;

#[path = "log/global_order.rs"]
mod global_order;
#[path = "log/idempotent_commands.rs"]
mod idempotent_commands;
#[path = "log/tamper_evidence.rs"]
mod tamper_evidence;

#[sqlx::test(migrations = "../migrations")]
async fn the_log_refuses_update_delete_and_truncate(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    for sql in [
        "UPDATE events SET payload = '{}'",
        "UPDATE events SET payload = '{}' WHERE false",
        "DELETE FROM events",
        "DELETE FROM events WHERE false",
        "TRUNCATE events",
        "UPDATE command_log SET outcome = '{}'",
        "DELETE FROM command_log",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(read_everything(&store).await.len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stale_expected_version_is_a_typed_conflict(pool: PgPool) {
    let store = EventStore::new(pool);
    store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    store.append(&[write("s-1", ExpectedVersion::Exact(1), vec![new_event(2)])], None).await.unwrap();
    let err = store.append(&[write("s-1", ExpectedVersion::Exact(1), vec![new_event(3)])], None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref stream_id, expected: 1 } if stream_id == "s-1"), "{err}");
    let err = store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(3)])], None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let stream = store.read_stream("s-1").await.unwrap();
    assert_eq!(stream.iter().map(|e| e.stream_version).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(stream[1].prev_hash, stream[0].hash);
}

#[sqlx::test(migrations = "../migrations")]
async fn command_handlers_reload_and_retry_after_a_conflict(pool: PgPool) {
    let store = EventStore::new(wide_pool(&pool, 12).await);
    let company = Uuid::new_v4();
    let id = TerminalId::parse("EVSE-RACE").unwrap();
    terminals::handle(&store, &ctx(company, None, "r"), &id, register(company, "EVSE-RACE")).await.unwrap();
    // Ten operators flip the status at once; each decision is made on fresh state.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let status = if i % 2 == 0 { TerminalStatus::Available } else { TerminalStatus::Unavailable };
            let command = TerminalCommand::ChangeStatus(ChangeStatus {
                company_id: CompanyId(company),
                status,
                reason: Some(format!("operator {i}")),
                now: chrono::Utc::now(),
            });
            terminals::handle(&store, &ctx(company, None, "s"), &id, command).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stream = store.read_stream("terminal-EVSE-RACE").await.unwrap();
    assert_eq!(stream.len(), 11, "every change applied once, none lost to a race");
    assert!(stream.windows(2).all(|w| w[1].stream_version == w[0].stream_version + 1 && w[1].prev_hash == w[0].hash));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stale_predecessor_hash_appends_nothing(pool: PgPool) {
    let store = EventStore::new(pool);
    store.append(&[write("s-1", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    let mut forged = write("s-1", ExpectedVersion::Exact(1), vec![new_event(2)]);
    forged.prev_hash = Some([9; 32]);
    let err = store.append(&[forged], None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.read_stream("s-1").await.unwrap().len(), 1);
}
