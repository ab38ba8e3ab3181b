//! Tamper evidence: `verify` against a log tampered with as a superuser would
//! (trigger switched off), and against published seal digests (anchors).

use super::*;

async fn log_with_history(pool: &PgPool) -> EventStore {
    let store = EventStore::new(pool.clone());
    for s in 0..5 {
        let stream = format!("acct-{s}");
        store
            .append(&[write(&stream, ExpectedVersion::NoStream, vec![new_event(1), new_event(2)])], None)
            .await
            .unwrap();
        store.append(&[write(&stream, ExpectedVersion::Exact(2), vec![new_event(3)])], None).await.unwrap();
    }
    assert!(seal_everything(&store).await >= 1);
    store
}

/// Seals until every event but the last seal itself is sealed. The watermark
/// is conservative (a transaction that ends while it is computed still counts
/// as open), so one pass may leave a tail for the next.
async fn seal_everything(store: &EventStore) -> u64 {
    let mut seals = 0;
    for _ in 0..200 {
        settle(store).await;
        seals += seal::seal_all(store).await.unwrap() as u64;
        if audit::verify(store).await.unwrap().unsealed <= 1 {
            return seals;
        }
        // Give transactions of tests running alongside time to end: the
        // watermark counts them as open (passes back to back ran out first).
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the log never got sealed");
}

async fn tamper(pool: &PgPool, sql: &str) {
    tamper_all(pool, &[sql]).await;
}

async fn tamper_all(pool: &PgPool, statements: &[&str]) {
    // Out of band, as a superuser who switches the trigger off.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only").execute(&mut *tx).await.unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    sqlx::query("ALTER TABLE events ENABLE TRIGGER events_append_only").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// A forgery by someone who knows the hashing: sets the payload of `version`
/// and recomputes the hashes of the stream from there on, so the stream chain
/// is consistent again (only the seals can tell).
async fn forge(pool: &PgPool, store: &EventStore, stream: &str, version: i64, payload: serde_json::Value) {
    let events = store.read_stream(stream).await.unwrap();
    let mut prev = if version == 1 { ZERO_HASH } else { events[version as usize - 2].hash_array() };
    let mut statements = Vec::new();
    for e in events.iter().filter(|e| e.stream_version >= version) {
        let payload = if e.stream_version == version { payload.clone() } else { e.payload.clone() };
        let hash = event_hash(
            &prev,
            &HashedFields {
                stream_id: &e.stream_id,
                stream_version: e.stream_version,
                event_id: e.event_id,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                payload: &payload,
                metadata: &e.metadata,
                recorded_at: e.recorded_at,
            },
        );
        statements.push(format!(
            "UPDATE events SET payload = '{}', prev_hash = '\\x{}', hash = '\\x{}' WHERE position = {}",
            payload.to_string().replace('\'', "''"),
            hex::encode(prev),
            hex::encode(hash),
            e.position
        ));
        prev = hash;
    }
    tamper_all(pool, &statements.iter().map(String::as_str).collect::<Vec<_>>()).await;
}

fn kinds(report: &audit::AuditReport) -> Vec<(FindingKind, &str)> {
    report.findings.iter().map(|f| (f.kind, f.stream_id.as_str())).collect()
}

fn anchored(anchors: Vec<[u8; 32]>) -> VerifyOptions {
    VerifyOptions { anchors, ..VerifyOptions::default() }
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_passes_on_an_intact_log(pool: PgPool) {
    let store = log_with_history(&pool).await;
    store.append(&[write("acct-9", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    let report = audit::verify(&store).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(report.findings.is_empty() && report.total_findings == 0);
    let seals = report.seals;
    assert!(seals >= 1);
    // 15 events, the seals, and acct-9's event (after the last seal, with it).
    assert_eq!((report.events, report.streams, report.unsealed), (16 + seals, 7, 2));
    let latest = report.latest_seal.clone().expect("the latest seal is reported");
    assert_eq!(latest.to_position, report.sealed_through);
    // More seals chain to the first and cover the rest.
    let more = seal_everything(&store).await;
    let report = audit::verify(&store).await.unwrap();
    assert!(report.ok() && report.seals == seals + more && report.unsealed == 1, "{report:?}");
    assert_ne!(report.latest_seal.unwrap().digest, latest.digest);
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_reports_every_altered_event_once(pool: PgPool) {
    let store = log_with_history(&pool).await;
    // The first event of one stream and the middle one of another: each is one
    // finding, not one for every later event of its stream.
    let first = store.read_stream("acct-1").await.unwrap()[0].position;
    let middle = store.read_stream("acct-3").await.unwrap()[1].position;
    tamper_all(
        &pool,
        &[
            &format!("UPDATE events SET payload = '{{\"n\": 999}}' WHERE position = {first}"),
            &format!("UPDATE events SET metadata = metadata || '{{\"actor\": \"mallory\"}}' WHERE position = {middle}"),
        ],
    )
    .await;
    let report = audit::verify(&store).await.unwrap();
    assert_eq!(kinds(&report), [(FindingKind::ContentAltered, "acct-1"), (FindingKind::ContentAltered, "acct-3")]);
    assert_eq!(report.findings.iter().map(|f| f.position).collect::<Vec<_>>(), [first, middle]);
    assert_eq!(report.total_findings, 2);
    assert!(report.findings[0].detail.contains("altered"), "{}", report.findings[0].detail);
    // Every event was still read and checked.
    assert_eq!(report.events, 15 + report.seals);
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_lists_up_to_max_findings_and_counts_the_rest(pool: PgPool) {
    let store = log_with_history(&pool).await;
    tamper(&pool, "UPDATE events SET payload = '{\"n\": 0}' WHERE stream_id LIKE 'acct-%'").await;
    let options = VerifyOptions { max_findings: 4, ..VerifyOptions::default() };
    let report = audit::verify_with(&store, &options).await.unwrap();
    assert_eq!((report.findings.len(), report.total_findings), (4, 15), "{report:?}");
    assert!(report.findings.iter().all(|f| f.kind == FindingKind::ContentAltered));
    assert!(report.findings.windows(2).all(|w| w[0].position < w[1].position));
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_tells_an_ordering_fault_from_tampering(pool: PgPool) {
    let store = log_with_history(&pool).await;
    store
        .append(&[write("acct-swap", ExpectedVersion::NoStream, vec![new_event(1), new_event(2)])], None)
        .await
        .unwrap();
    let written = store.read_stream("acct-swap").await.unwrap();
    let (low, high) = (written[0].position, written[1].position);
    assert!(low < high);
    // Version 2 moves below version 1 in global order; content and hashes stay.
    tamper_all(
        &pool,
        &[
            &format!("UPDATE events SET position = -1 WHERE position = {low}"),
            &format!("UPDATE events SET position = {low} WHERE position = {high}"),
            &format!("UPDATE events SET position = {high} WHERE position = -1"),
        ],
    )
    .await;
    seal_everything(&store).await;
    let report = audit::verify(&store).await.unwrap();
    assert_eq!(kinds(&report), [(FindingKind::OrderingFault, "acct-swap")], "{report:?}");
    let fault = &report.findings[0];
    assert_eq!(fault.position, high, "version 1, now after version 2, is named");
    assert!(fault.detail.contains(&format!("after version 2 at position {low}")), "{}", fault.detail);
    assert_eq!(report.total_findings, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_names_a_deleted_event_inside_a_stream_and_its_seal(pool: PgPool) {
    let store = log_with_history(&pool).await;
    let stream = store.read_stream("acct-1").await.unwrap();
    tamper(&pool, &format!("DELETE FROM events WHERE position = {}", stream[1].position)).await;
    let report = audit::verify(&store).await.unwrap();
    assert_eq!(
        kinds(&report),
        [(FindingKind::MissingEvent, "acct-1"), (FindingKind::SealMismatch, domain::log::SEAL_STREAM)],
        "{report:?}"
    );
    let missing = &report.findings[0];
    assert_eq!(missing.position, stream[2].position, "the event after the gap is named");
    assert!(missing.detail.contains("version 2 never appears"), "{}", missing.detail);
    assert!(report.findings[1].detail.contains("but the range now holds"), "{}", report.findings[1].detail);
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_names_the_seal_when_the_last_event_of_a_stream_is_deleted(pool: PgPool) {
    let store = log_with_history(&pool).await;
    let last = store.read_stream("acct-4").await.unwrap()[2].position;
    tamper(&pool, &format!("DELETE FROM events WHERE position = {last}")).await;
    let report = audit::verify(&store).await.unwrap();
    assert_eq!(kinds(&report), [(FindingKind::SealMismatch, domain::log::SEAL_STREAM)], "{report:?}");
    let detail = &report.findings[0].detail;
    assert!(detail.contains("but the range now holds") && detail.contains("another Merkle root"), "{detail}");
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_names_a_rewired_link_and_keeps_checking_seals_after_a_broken_one(pool: PgPool) {
    let store = log_with_history(&pool).await;
    for s in 0..3 {
        store
            .append(&[write(&format!("more-{s}"), ExpectedVersion::NoStream, vec![new_event(1)])], None)
            .await
            .unwrap();
    }
    seal_everything(&store).await;
    let before = audit::verify(&store).await.unwrap();
    assert!(before.ok() && before.seals >= 2, "{before:?}");
    // acct-2 version 3 now claims another predecessor; a sealed event of the
    // first range gets its hash rewritten.
    let acct2 = store.read_stream("acct-2").await.unwrap();
    let acct0 = store.read_stream("acct-0").await.unwrap();
    tamper_all(
        &pool,
        &[
            &format!("UPDATE events SET prev_hash = '\\x{}' WHERE position = {}", "ab".repeat(32), acct2[2].position),
            &format!("UPDATE events SET hash = '\\x{}' WHERE position = {}", "cd".repeat(32), acct0[2].position),
        ],
    )
    .await;
    let covering = store
        .read_stream(domain::log::SEAL_STREAM)
        .await
        .unwrap()
        .into_iter()
        .find(|e| {
            let domain::log::LogEvent::RangeSealed(s) = e.decode().unwrap();
            s.after_position < acct0[2].position && acct0[2].position <= s.to_position
        })
        .unwrap()
        .position;
    let report = audit::verify(&store).await.unwrap();
    assert_eq!(
        kinds(&report),
        [
            (FindingKind::ContentAltered, "acct-0"),
            (FindingKind::ChainLinkBroken, "acct-2"),
            (FindingKind::SealMismatch, domain::log::SEAL_STREAM)
        ],
        "{report:?}"
    );
    assert!(report.findings[1].detail.contains("previous-hash field was changed"), "{}", report.findings[1].detail);
    assert_eq!(report.findings[2].position, covering, "only the seal over acct-0 fails; the later ones verify");
    assert_eq!(report.seals, before.seals);
}

#[sqlx::test(migrations = "../migrations")]
async fn verify_checks_the_log_against_published_seal_digests(pool: PgPool) {
    let store = log_with_history(&pool).await;
    let first = audit::verify(&store).await.unwrap().latest_seal.unwrap();
    store.append(&[write("acct-7", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    seal_everything(&store).await;
    let latest = audit::verify(&store).await.unwrap().latest_seal.unwrap();
    assert_ne!(first.digest, latest.digest);
    let digest = |s: &audit::SealRef| parse_hex_hash(&s.digest).unwrap();

    // Published digests of the log's own seals pass, old and new.
    let report = audit::verify_with(&store, &anchored(vec![digest(&first), digest(&latest)])).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.anchors.iter().map(|a| a.found_at).collect::<Vec<_>>(),
        [Some(first.position), Some(latest.position)]
    );

    // A digest this log never sealed does not.
    let report = audit::verify_with(&store, &anchored(vec![[7; 32]])).await.unwrap();
    assert_eq!(kinds(&report), [(FindingKind::AnchorNotFound, domain::log::SEAL_STREAM)], "{report:?}");
    assert!(report.findings[0].detail.contains("rewritten or truncated"), "{}", report.findings[0].detail);
    assert_eq!(report.anchors[0].found_at, None);

    // A consistent forgery: an event rewritten with every hash recomputed.
    // Only the seal can tell; after the seals are recomputed too, the log
    // verifies on its own, but not against the digests published before.
    forge(&pool, &store, "acct-2", 2, serde_json::json!({"n": 1_000_000})).await;
    let report = audit::verify(&store).await.unwrap();
    assert_eq!(kinds(&report), [(FindingKind::SealMismatch, domain::log::SEAL_STREAM)], "{report:?}");
    assert!(report.findings[0].detail.contains("no longer have its Merkle root"), "{}", report.findings[0].detail);
    tamper(&pool, "DELETE FROM events WHERE stream_id = 'log-seals'").await;
    seal_everything(&store).await;
    let report = audit::verify(&store).await.unwrap();
    assert!(report.ok(), "the forgery is consistent: {report:?}");
    let report = audit::verify_with(&store, &anchored(vec![digest(&first), digest(&latest)])).await.unwrap();
    assert_eq!(report.total_findings, 2, "{report:?}");
    assert!(report.findings.iter().all(|f| f.kind == FindingKind::AnchorNotFound));
    assert_eq!(report.anchors.iter().map(|a| a.found_at).collect::<Vec<_>>(), [None, None]);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_anchor_catches_a_truncated_seal_chain(pool: PgPool) {
    let store = log_with_history(&pool).await;
    store.append(&[write("acct-7", ExpectedVersion::NoStream, vec![new_event(1)])], None).await.unwrap();
    seal_everything(&store).await;
    let latest = audit::verify(&store).await.unwrap().latest_seal.unwrap();
    // The newest seal (the last event of log-seals) is removed: no chain can tell.
    tamper(&pool, &format!("DELETE FROM events WHERE position = {}", latest.position)).await;
    assert!(audit::verify(&store).await.unwrap().ok());
    let report = audit::verify_with(&store, &anchored(vec![parse_hex_hash(&latest.digest).unwrap()])).await.unwrap();
    assert_eq!(kinds(&report), [(FindingKind::AnchorNotFound, domain::log::SEAL_STREAM)], "{report:?}");
}
