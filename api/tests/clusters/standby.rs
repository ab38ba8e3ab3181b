//! Readers on the primary and on a hot standby (findings 1 and 4 of issue 11).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use commands::{
    store::{CommandRecord, LogTransaction},
    EventStore, ExpectedVersion, RecordedEvent, StoreError, StreamWrite,
};
use rand::Rng;
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::cluster::{caught_up, event, migrate, write, Cluster};

async fn xid(tx: &mut LogTransaction) -> i64 {
    sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint").fetch_one(tx.conn()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_reader_never_passes_a_transaction_still_open_on_the_primary() {
    let primary = Cluster::primary("standby-p", &[]);
    primary.create_db("app").await;
    let p = primary.pool("app", 8).await;
    migrate(&p).await;
    let standby = Cluster::standby_of(&primary, "standby-s");
    let s = standby.pool("app", 4).await;
    let (writer, reader) = (EventStore::new(p.clone()), EventStore::new(s.clone()));
    // Writers refuse the standby at start (every role checks), readers may use it.
    let refused = commands::deployment::check_writable(&s).await.unwrap_err();
    assert!(matches!(refused, commands::deployment::DeploymentError::Standby), "{refused}");
    commands::deployment::check_writable(&p).await.unwrap();

    // A takes its transaction id first and writes nothing yet (a command
    // record, a lock, anything); B, a later transaction, commits an event.
    let mut a = writer.begin().await.unwrap();
    let a_xid = xid(&mut a).await;
    let b = writer.append(&[write("b-1", ExpectedVersion::NoStream, vec![event(1)])], None).await.unwrap();
    assert!(b[0].position >> 16 > a_xid);
    caught_up(&p, &s).await;
    let on_standby: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&s).await.unwrap();
    assert_eq!(on_standby, 1, "B's row has reached the standby");
    let watermark: i64 = sqlx::query_scalar("SELECT events_watermark()").fetch_one(&s).await.unwrap();
    assert!(watermark <= a_xid << 16, "standby watermark {watermark} passes open xid {a_xid}");
    assert!(reader.read_all(0, 100).await.unwrap().is_empty(), "the standby handed out B while A is open");
    assert!(writer.read_all(0, 100).await.unwrap().is_empty(), "the primary handed out B while A is open");

    // A appends and commits: it comes first in global order, on both.
    a.append(&write("a-1", ExpectedVersion::NoStream, vec![event(2)])).await.unwrap();
    a.commit().await.unwrap();
    caught_up(&p, &s).await;
    for store in [&reader, &writer] {
        let all = store.read_all(0, 100).await.unwrap();
        assert_eq!(all.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>(), ["a-1", "b-1"]);
    }
}

/// What one writer committed: event id → (stream, version).
type Committed = Arc<Mutex<HashMap<Uuid, (String, i64)>>>;

async fn writer(
    store: EventStore,
    id: usize,
    streams: usize,
    stop: Arc<AtomicBool>,
    committed: Committed,
    restarts: Arc<AtomicU64>,
) {
    let company = Uuid::new_v4();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (rollback, picks, hold) = {
            let mut rng = rand::thread_rng();
            // One or two streams, in stream order (as the store's callers do),
            // so that two writers wait for each other rather than deadlock.
            let mut picks: Vec<usize> = (0..rng.gen_range(1..=2)).map(|_| rng.gen_range(0..streams)).collect();
            picks.sort_unstable();
            picks.dedup();
            (rng.gen_bool(0.2), picks, rng.gen_range(0..3u64))
        };
        let record = CommandRecord {
            company_id: company,
            command_id: format!("w{id}-{n}-{}", Uuid::new_v4()),
            command_type: "test".into(),
            request_hash: vec![0; 32],
            outcome: json!({}),
        };
        let writes: Vec<StreamWrite> = picks
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let events = (0..=(k as u64 % 2)).map(|i| event(n * 10 + i)).collect();
                write(&format!("shared-{s}"), ExpectedVersion::Any, events)
            })
            .collect();
        if id % 2 == 1 && !rollback {
            // Half the writers go through EventStore::append, which records
            // the command first too and restarts by itself on an order conflict.
            match store.append(&writes, Some(&record)).await {
                Ok(recorded) => {
                    let mut c = committed.lock().await;
                    for r in recorded {
                        c.insert(r.event_id, (r.stream_id, r.stream_version));
                    }
                }
                Err(StoreError::Conflict { .. } | StoreError::Deadlock { .. }) => {}
                Err(e) => panic!("writer {id}: {e}"),
            }
            continue;
        }
        let attempt = async {
            let mut tx = store.begin().await?;
            // The command record first: the transaction has its id before it
            // reads any stream's head.
            tx.record_command(&record).await?;
            tokio::time::sleep(Duration::from_millis(hold)).await;
            let mut recorded = Vec::new();
            for w in &writes {
                recorded.extend(tx.append(w).await?);
            }
            if rollback {
                tx.rollback().await?;
                return Ok::<_, StoreError>(Vec::new());
            }
            tx.commit().await?;
            Ok(recorded)
        };
        match attempt.await {
            Ok(recorded) => {
                let mut c = committed.lock().await;
                for r in recorded {
                    c.insert(r.event_id, (r.stream_id, r.stream_version));
                }
            }
            Err(StoreError::Conflict { .. } | StoreError::Deadlock { .. }) => {}
            Err(StoreError::OrderConflict { .. }) => {
                restarts.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => panic!("writer {id}: {e}"),
        }
    }
}

fn check(who: &str, seen: &[RecordedEvent], committed: &HashMap<Uuid, (String, i64)>) {
    let ids: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), seen.len(), "{who}: an event was read twice");
    let missing = committed.keys().filter(|id| !ids.contains(id)).count();
    let extra = ids.iter().filter(|id| !committed.contains_key(id)).count();
    assert_eq!(
        (missing, extra),
        (0, 0),
        "{who}: {missing} committed events never read, {extra} read that never committed"
    );
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position), "{who}: positions not increasing");
    let mut last: HashMap<&str, i64> = HashMap::new();
    for e in seen {
        let before = last.insert(&e.stream_id, e.stream_version).unwrap_or(0);
        assert_eq!(
            e.stream_version,
            before + 1,
            "{who}: {} version {} read after version {before} (global order contradicts stream order)",
            e.stream_id,
            e.stream_version
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_writers_on_shared_streams_are_read_exactly_once_in_order_on_primary_and_standby() {
    let primary = Cluster::primary("contend-p", &[("deadlock_timeout", "'50ms'")]);
    primary.create_db("app").await;
    let p = primary.pool("app", 40).await;
    migrate(&p).await;
    let standby = Cluster::standby_of(&primary, "contend-s");
    let s = standby.pool("app", 4).await;
    let store = EventStore::new(p.clone());

    let (stop, committed, restarts) =
        (Arc::new(AtomicBool::new(false)), Committed::default(), Arc::new(AtomicU64::new(0)));
    let writers: Vec<_> = (0..32)
        .map(|i| tokio::spawn(writer(store.clone(), i, 4, stop.clone(), committed.clone(), restarts.clone())))
        .collect();
    // Readers tail while the writers run, on the primary and on the standby.
    let (primary_reader, standby_reader) = (store.clone(), EventStore::new(s.clone()));
    let early = tokio::spawn(tail_for_a_while(standby_reader));
    let live = tokio::spawn(tail_for_a_while(primary_reader));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let committed = committed.lock().await.clone();
    assert!(committed.len() > 200, "only {} events committed", committed.len());
    caught_up(&p, &s).await;
    for (who, handle) in [("standby", early), ("primary", live)] {
        let (reader, mut seen, cursor) = handle.await.unwrap();
        let rest = committed.len().saturating_sub(seen.len());
        let mut more = tail_after(&reader, cursor, rest).await;
        seen.append(&mut more);
        check(who, &seen, &committed);
    }
    // And a reader starting from zero on each.
    check("primary, from zero", &tail_after(&store, 0, committed.len()).await, &committed);
    check("standby, from zero", &tail_after(&EventStore::new(s.clone()), 0, committed.len()).await, &committed);
    eprintln!(
        "{} events committed by 32 writers on 4 streams; {} transactions restarted for global order",
        committed.len(),
        restarts.load(Ordering::Relaxed)
    );
    assert!(restarts.load(Ordering::Relaxed) > 0, "the run never hit the order conflict it is meant to exercise");
    commands::seal::seal_all(&store).await.unwrap();
    let report = commands::audit::verify(&store).await.unwrap();
    assert!(report.ok(), "audit verify: {report:?}");
}

/// Tails the log for about 4 s (while the writers run); returns what it read and its cursor.
async fn tail_for_a_while(reader: EventStore) -> (EventStore, Vec<RecordedEvent>, i64) {
    let mut seen: Vec<RecordedEvent> = Vec::new();
    let mut cursor = 0;
    for _ in 0..200 {
        let batch = reader.read_all(cursor, 200).await.unwrap();
        if let Some(last) = batch.last() {
            cursor = last.position;
        }
        seen.extend(batch);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (reader, seen, cursor)
}

async fn tail_after(store: &EventStore, mut cursor: i64, expected: usize) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    let mut idle = 0;
    for _ in 0..6000 {
        let batch = store.read_all(cursor, 500).await.unwrap();
        if let Some(last) = batch.last() {
            cursor = last.position;
        }
        let empty = batch.is_empty();
        seen.extend(batch);
        if empty {
            idle += 1;
            // Everything committed has reached this reader's database; after
            // 2 s without anything new, what is missing was skipped.
            if seen.len() >= expected || idle > 200 {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        } else {
            idle = 0;
        }
    }
    seen
}
