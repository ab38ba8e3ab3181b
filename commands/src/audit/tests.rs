#![allow(clippy::unwrap_used)]

use chrono::{SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::hashing::{event_hash, HashedFields, ZERO_HASH};

/// A correctly chained stream of `n` events (positions are set by the caller).
fn stream(id: &str, n: i64) -> Vec<RecordedEvent> {
    let mut prev = ZERO_HASH;
    (1..=n)
        .map(|v| {
            let mut e = RecordedEvent {
                position: 0,
                stream_id: id.into(),
                stream_version: v,
                event_id: Uuid::new_v4(),
                event_type: "test.happened".into(),
                schema_version: 1,
                payload: json!({ "n": v }),
                metadata: json!({}),
                recorded_at: Utc::now().trunc_subsecs(6),
                prev_hash: prev.to_vec(),
                hash: Vec::new(),
            };
            let hash = rehash(&prev, &e);
            e.hash = hash.to_vec();
            prev = hash;
            e
        })
        .collect()
}

/// The hash `e` would have after `prev`, as the store computes it.
fn rehash(prev: &Hash, e: &RecordedEvent) -> Hash {
    event_hash(
        prev,
        &HashedFields {
            stream_id: &e.stream_id,
            stream_version: e.stream_version,
            event_id: e.event_id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            payload: &e.payload,
            metadata: &e.metadata,
            recorded_at: e.recorded_at,
        },
    )
}

/// Checks the events of `s` in the order of `versions`, at positions 1, 2, ….
fn check_in_order(s: &[RecordedEvent], versions: &[i64]) -> AuditReport {
    let options = VerifyOptions::default();
    let mut checker = Checker::new(&options);
    for (i, v) in versions.iter().enumerate() {
        let mut e = s[*v as usize - 1].clone();
        e.position = i as i64 + 1;
        checker.event(&e);
    }
    checker.finish()
}

fn found(report: &AuditReport) -> Vec<(i64, FindingKind)> {
    report.findings.iter().map(|f| (f.position, f.kind)).collect()
}

#[test]
fn versions_that_arrive_late_are_ordering_faults_and_their_links_are_still_checked() {
    let s = stream("s", 4);
    let report = check_in_order(&s, &[1, 4, 3, 2]);
    assert_eq!(found(&report), [(3, FindingKind::OrderingFault), (4, FindingKind::OrderingFault)], "{report:?}");
    assert!(report.findings[0].detail.contains("after version 4 at position 2"), "{report:?}");
    assert!(report.findings[1].detail.contains("after version 3 at position 3"), "{report:?}");

    // The same order with version 3 rewritten (hash recomputed): its links are checked when it fills the gap.
    let mut forged = s.clone();
    forged[2].payload = json!({ "n": 33 });
    let hash = rehash(&forged[2].prev_hash.as_slice().try_into().unwrap(), &forged[2]);
    forged[2].hash = hash.to_vec();
    let report = check_in_order(&forged, &[1, 4, 3, 2]);
    assert_eq!(
        found(&report),
        [(2, FindingKind::ChainLinkBroken), (3, FindingKind::OrderingFault), (4, FindingKind::OrderingFault)],
        "version 4 no longer links to version 3: {report:?}"
    );
}

#[test]
fn versions_that_never_arrive_are_missing_and_a_repeated_version_forks() {
    let s = stream("s", 6);
    let report = check_in_order(&s, &[1, 3, 6]);
    assert_eq!(found(&report), [(2, FindingKind::MissingEvent), (3, FindingKind::MissingEvent)], "{report:?}");
    assert!(report.findings[1].detail.contains("versions 4 to 5 never appear"), "{report:?}");

    let report = check_in_order(&s, &[1, 2, 2, 3]);
    assert_eq!(found(&report), [(3, FindingKind::ChainLinkBroken)], "{report:?}");
    assert!(report.findings[0].detail.contains("claims stream version 2"), "{report:?}");

    // A stream whose first events are gone.
    let report = check_in_order(&s, &[3, 4]);
    assert_eq!(found(&report), [(1, FindingKind::MissingEvent)], "{report:?}");
    assert!(
        report.findings[0].detail.contains("versions 1 to 2 never appear: the stream starts at version 3"),
        "{report:?}"
    );
}
