//! `chargeledger audit verify`: recomputes every stream's hash chain and every
//! seal from the stored rows and reports every broken link, by kind.
//!
//! One pass in position order. After a break the checker resynchronises on what
//! is stored (a stream's chain on the stored hash, the seal chain on the stored
//! digest), so one altered event is one finding, not one for every later event.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use domain::log::{LogEvent, RangeSealed, SEAL_STREAM};
use futures::StreamExt;
use serde::Serialize;

use crate::{
    hashing::{event_hash, merkle_leaf, merkle_root, parse_hex_hash, seal_digest, Hash, HashedFields, ZERO_HASH},
    store::{EventStore, RecordedEvent, StoreError, EVENT_COLUMNS},
};

/// Findings listed by default; later ones are only counted.
pub const DEFAULT_MAX_FINDINGS: usize = 100;

/// What to check besides the log itself.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Findings kept in the report; the rest are counted in `total_findings`.
    pub max_findings: usize,
    /// Seal digests published elsewhere (say, consumed from the Kafka topic of
    /// `log-seals`) that must be in the log's seal chain, which must verify up to them.
    pub anchors: Vec<Hash>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { max_findings: DEFAULT_MAX_FINDINGS, anchors: Vec::new() }
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// Events read (every row of the log).
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// Seals checked.
    pub seals: u64,
    /// Last position covered by a seal.
    pub sealed_through: i64,
    /// Events after the last seal (chained, not yet sealed).
    pub unsealed: u64,
    /// The newest seal, whose digest an auditor can publish and later pass as an anchor.
    pub latest_seal: Option<SealRef>,
    /// The anchors asked for, and whether each was found in a seal chain that verifies up to it.
    pub anchors: Vec<AnchorResult>,
    /// Findings in position order, at most `max_findings` of them.
    pub findings: Vec<Finding>,
    /// Every finding, including those beyond `max_findings`.
    pub total_findings: u64,
}

/// A seal of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SealRef {
    /// Hex digest (the `seal` field of the `log.range_sealed` event).
    pub digest: String,
    /// Last position the seal covers.
    pub to_position: i64,
    /// Position of the seal event itself.
    pub position: i64,
}

/// One `--anchor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorResult {
    /// Hex digest asked for.
    pub digest: String,
    /// Position of the seal event with that digest, when it is in a seal chain that verifies up to it.
    pub found_at: Option<i64>,
}

/// One broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Global position of the offending event (or of the seal that fails).
    pub position: i64,
    /// Stream of that event.
    pub stream_id: String,
    /// What kind of break.
    pub kind: FindingKind,
    /// What exactly is wrong.
    pub detail: String,
}

/// Kinds of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A stream's versions are not in global position order (version v+1 at a
    /// lower position than version v); every event is there and hashes match.
    OrderingFault,
    /// Stream versions that never appear: a deleted event (or a stream whose
    /// first events are gone).
    MissingEvent,
    /// An event's content does not match its own hash.
    ContentAltered,
    /// An event's previous-hash link does not match its stream's previous
    /// event (that event was rewritten, or this one was forged into the chain),
    /// or two events claim one stream version.
    ChainLinkBroken,
    /// A seal fails: its range no longer matches its Merkle root, it does not
    /// chain to the previous seal, it does not start where the previous ended,
    /// or its digest does not match its fields.
    SealMismatch,
    /// An anchor given to verify is not a seal of this log's verified chain.
    AnchorNotFound,
}

impl FindingKind {
    /// Human-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderingFault => "ordering fault",
            Self::MissingEvent => "missing event",
            Self::ContentAltered => "content altered",
            Self::ChainLinkBroken => "chain link broken",
            Self::SealMismatch => "seal mismatch",
            Self::AnchorNotFound => "anchor not found",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AuditReport {
    /// Whether the log verified (no finding of any kind).
    pub fn ok(&self) -> bool {
        self.total_findings == 0
    }

    /// The first finding in position order, if any.
    pub fn first(&self) -> Option<&Finding> {
        self.findings.first()
    }

    /// Listed findings of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.kind == kind)
    }
}

/// Verifies the whole log with the default options.
pub async fn verify(store: &EventStore) -> Result<AuditReport, StoreError> {
    verify_with(store, &VerifyOptions::default()).await
}

/// Verifies the whole log in one pass in position order. Memory grows with the
/// number of streams (last version and hash of each, plus one entry per version
/// gap still open), the unsealed tail, and the findings kept.
pub async fn verify_with(store: &EventStore, options: &VerifyOptions) -> Result<AuditReport, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY position");
    let mut rows = sqlx::query(&sql).fetch(store.pool());
    let mut check = Checker::new(options);
    while let Some(row) = rows.next().await {
        let event = RecordedEvent::from_row(&row?)?;
        check.event(&event);
    }
    Ok(check.finish())
}

/// A version range of a stream not seen yet, with what is known around it.
#[derive(Debug, Clone)]
struct Gap {
    /// Last missing version (the first is the map key).
    last: i64,
    /// Stored hash of the version before the gap (None: unreadable).
    before_hash: Option<Hash>,
    /// Stored previous-hash of the version after the gap.
    after_prev: Option<Hash>,
    /// Version and position of the event after the gap.
    after_version: i64,
    after_position: i64,
}

#[derive(Debug)]
struct StreamState {
    /// Highest version seen.
    last_version: i64,
    /// Its stored hash (None: unreadable, so the next link is not checked).
    last_hash: Option<Hash>,
    /// Versions below `last_version` not seen yet, by first version.
    gaps: BTreeMap<i64, Gap>,
}

/// What the predecessor check of one event compares against.
enum Predecessor {
    /// The stored hash of the previous version (None: unreadable).
    Known(Option<Hash>),
    /// The previous version has not been seen yet; checked when it is.
    Later,
    /// The version was seen already: a second event claims it.
    Duplicate,
}

struct Checker<'o> {
    options: &'o VerifyOptions,
    streams: HashMap<String, StreamState>,
    /// Merkle leaves of events not yet covered by a seal, in position order.
    pending: Vec<(i64, Hash)>,
    /// Stored digest of the last seal (None: unreadable).
    previous_seal: Option<Hash>,
    /// Whether every seal so far verified.
    seal_chain_intact: bool,
    /// Anchor → position of its seal event, once found in an intact chain; or
    /// `Some(None)` once found in a chain that does not verify.
    anchor_hits: HashMap<Hash, Option<Option<i64>>>,
    report: AuditReport,
}

impl<'o> Checker<'o> {
    fn new(options: &'o VerifyOptions) -> Self {
        Self {
            options,
            streams: HashMap::new(),
            pending: Vec::new(),
            previous_seal: Some(ZERO_HASH),
            seal_chain_intact: true,
            anchor_hits: options.anchors.iter().map(|a| (*a, None)).collect(),
            report: AuditReport {
                events: 0,
                streams: 0,
                seals: 0,
                sealed_through: 0,
                unsealed: 0,
                latest_seal: None,
                anchors: Vec::new(),
                findings: Vec::new(),
                total_findings: 0,
            },
        }
    }

    fn found(&mut self, position: i64, stream_id: &str, kind: FindingKind, detail: String) {
        self.report.total_findings += 1;
        if self.report.findings.len() < self.options.max_findings {
            self.report.findings.push(Finding { position, stream_id: stream_id.to_owned(), kind, detail });
        }
    }

    fn event(&mut self, event: &RecordedEvent) {
        self.report.events += 1;
        let position = event.position;
        let stored_prev: Option<Hash> = event.prev_hash.as_slice().try_into().ok();
        let stored: Option<Hash> = event.hash.as_slice().try_into().ok();
        let fields = HashedFields {
            stream_id: &event.stream_id,
            stream_version: event.stream_version,
            event_id: event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            payload: &event.payload,
            metadata: &event.metadata,
            recorded_at: event.recorded_at,
        };
        // Content against its own stored previous hash: independent of the
        // rest of the stream, so it can be checked whatever the order.
        let content_ok = matches!((stored_prev, stored), (Some(p), Some(h)) if event_hash(&p, &fields) == h);

        let version = event.stream_version;
        // Findings of this event, pushed once the stream state is no longer borrowed.
        let mut later: Vec<(i64, FindingKind, String)> = Vec::new();
        let state = self.streams.entry(event.stream_id.clone()).or_insert_with(|| StreamState {
            last_version: 0,
            last_hash: Some(ZERO_HASH),
            gaps: BTreeMap::new(),
        });
        let predecessor = if version == state.last_version + 1 {
            let known = state.last_hash;
            state.last_version = version;
            state.last_hash = stored;
            Predecessor::Known(known)
        } else if version > state.last_version + 1 {
            state.gaps.insert(
                state.last_version + 1,
                Gap {
                    last: version - 1,
                    before_hash: state.last_hash,
                    after_prev: stored_prev,
                    after_version: version,
                    after_position: position,
                },
            );
            state.last_version = version;
            state.last_hash = stored;
            Predecessor::Later
        } else if let Some((first, gap)) =
            state.gaps.range(..=version).next_back().filter(|(_, g)| g.last >= version).map(|(f, g)| (*f, g.clone()))
        {
            // A version that a higher one overtook in global order.
            later.push((
                position,
                FindingKind::OrderingFault,
                format!(
                    "stream version {version} is at position {position}, after version {} at position {}: the global order contradicts the stream order",
                    gap.after_version, gap.after_position
                ),
            ));
            state.gaps.remove(&first);
            if first < version {
                state.gaps.insert(
                    first,
                    Gap {
                        last: version - 1,
                        before_hash: gap.before_hash,
                        after_prev: stored_prev,
                        after_version: version,
                        after_position: position,
                    },
                );
            }
            if version < gap.last {
                state.gaps.insert(version + 1, Gap { before_hash: stored, ..gap.clone() });
            } else if let (Some(after_prev), Some(h)) = (gap.after_prev, stored) {
                if after_prev != h {
                    let (v, p) = (gap.after_version, gap.after_position);
                    let detail = format!(
                        "the previous-hash link of stream version {v} does not match version {version} (at position {position}): the previous event was rewritten or this one was forged into the chain"
                    );
                    later.push((p, FindingKind::ChainLinkBroken, detail));
                }
            }
            if version == first {
                Predecessor::Known(gap.before_hash)
            } else {
                Predecessor::Later
            }
        } else {
            let detail = format!("a second event claims stream version {version}: the stream's chain forks");
            later.push((position, FindingKind::ChainLinkBroken, detail));
            Predecessor::Duplicate
        };

        if matches!(predecessor, Predecessor::Duplicate) {
            // Already reported; its content is judged by nobody's chain.
        } else if !content_ok {
            // A rewired previous-hash field with the content intact is a link fault.
            let rewired = matches!((&predecessor, stored), (Predecessor::Known(Some(p)), Some(h))
                if Some(*p) != stored_prev && event_hash(p, &fields) == h);
            if rewired {
                later.push((
                    position,
                    FindingKind::ChainLinkBroken,
                    "the previous-hash field was changed: it no longer names the stream's previous event".into(),
                ));
            } else {
                later.push((
                    position,
                    FindingKind::ContentAltered,
                    "content does not match its hash: the event was altered".into(),
                ));
            }
        } else if let Predecessor::Known(Some(p)) = predecessor {
            if stored_prev != Some(p) {
                later.push((
                    position,
                    FindingKind::ChainLinkBroken,
                    format!(
                        "the previous-hash link does not match stream version {}: the previous event was rewritten or this one was forged into the chain",
                        version - 1
                    ),
                ));
            }
        }
        for (at, kind, detail) in later {
            self.found(at, &event.stream_id, kind, detail);
        }
        self.after_stream_checks(event);
    }

    fn after_stream_checks(&mut self, event: &RecordedEvent) {
        if event.stream_id == SEAL_STREAM {
            self.seal(event);
        }
        self.pending.push((event.position, merkle_leaf(event.position, &event.hash)));
    }

    fn seal(&mut self, event: &RecordedEvent) {
        let seal = match event.decode::<LogEvent>() {
            Ok(LogEvent::RangeSealed(seal)) => seal,
            Err(e) => {
                self.seal_chain_intact = false;
                self.found(event.position, SEAL_STREAM, FindingKind::SealMismatch, format!("seal is unreadable: {e}"));
                return;
            }
        };
        self.report.seals += 1;
        let problems = self.seal_problems(&seal);
        let intact = self.seal_chain_intact && problems.is_empty();
        self.seal_chain_intact = intact;
        if !problems.is_empty() {
            let detail = format!("seal of ({}, {}]: {}", seal.after_position, seal.to_position, problems.join("; "));
            self.found(event.position, SEAL_STREAM, FindingKind::SealMismatch, detail);
        }
        // Resynchronise on what the seal says, so the next one is judged on its own.
        let digest = parse_hex_hash(&seal.seal);
        if let Some(hit) = digest.and_then(|d| self.anchor_hits.get_mut(&d)) {
            if hit.is_none() || intact {
                *hit = Some(intact.then_some(event.position));
            }
        }
        self.pending.retain(|(p, _)| *p > seal.to_position);
        self.previous_seal = digest;
        self.report.sealed_through = seal.to_position;
        self.report.latest_seal =
            Some(SealRef { digest: seal.seal.clone(), to_position: seal.to_position, position: event.position });
    }

    fn seal_problems(&self, seal: &RangeSealed) -> Vec<String> {
        let mut problems = Vec::new();
        let stored_previous = parse_hex_hash(&seal.previous_seal);
        if let Some(previous) = self.previous_seal {
            if stored_previous != Some(previous) {
                problems.push("it does not chain to the previous seal (the seal chain is broken)".to_owned());
            }
        }
        let through = self.report.sealed_through;
        if seal.after_position > through {
            problems.push(format!(
                "it starts after position {} but the previous seal ends at {through}: a seal is missing",
                seal.after_position
            ));
        } else if seal.after_position < through {
            problems.push(format!(
                "it starts after position {} but the previous seal already covers up to {through}",
                seal.after_position
            ));
        }
        let covered: Vec<Hash> = self
            .pending
            .iter()
            .filter(|(p, _)| *p > seal.after_position && *p <= seal.to_position)
            .map(|(_, leaf)| *leaf)
            .collect();
        let root = merkle_root(&covered);
        let stored_root = parse_hex_hash(&seal.merkle_root);
        if covered.len() as i64 != seal.event_count {
            problems.push(format!(
                "it sealed {} events but the range now holds {} with another Merkle root: an event was deleted, added or altered",
                seal.event_count,
                covered.len()
            ));
        } else if stored_root != Some(root) {
            problems.push(format!(
                "its {} events no longer have its Merkle root: an event was replaced, moved or had its hash rewritten",
                seal.event_count
            ));
        }
        let recomputed = stored_root.map(|r| {
            seal_digest(
                &stored_previous.unwrap_or(ZERO_HASH),
                seal.after_position,
                seal.to_position,
                seal.event_count,
                &r,
            )
        });
        if stored_previous.is_none() || recomputed.is_none() || recomputed != parse_hex_hash(&seal.seal) {
            problems.push("its digest does not match its own fields".to_owned());
        }
        problems
    }

    fn finish(mut self) -> AuditReport {
        let streams = std::mem::take(&mut self.streams);
        self.report.streams = streams.len() as u64;
        let mut missing: Vec<(i64, String, String)> = Vec::new();
        for (stream_id, state) in streams {
            for (first, gap) in state.gaps {
                let versions = if first == gap.last {
                    format!("version {first}")
                } else {
                    format!("versions {first} to {}", gap.last)
                };
                let verb = if first == gap.last { "appears" } else { "appear" };
                let context = if first == 1 {
                    format!("the stream starts at version {}", gap.after_version)
                } else {
                    format!("version {} follows version {}", gap.after_version, first - 1)
                };
                let detail = format!("stream {versions} never {verb}: {context} (an event is missing)");
                missing.push((gap.after_position, stream_id.clone(), detail));
            }
        }
        missing.sort();
        for (position, stream_id, detail) in missing {
            self.found(position, &stream_id, FindingKind::MissingEvent, detail);
        }

        let anchor_position = self.report.latest_seal.as_ref().map_or(0, |s| s.position);
        let options = self.options;
        for anchor in &options.anchors {
            let digest = hex::encode(anchor);
            if self.report.anchors.iter().any(|a| a.digest == digest) {
                continue;
            }
            let hit = self.anchor_hits.get(anchor).copied().flatten();
            let found_at = match hit {
                Some(Some(position)) => Some(position),
                Some(None) => {
                    let detail = format!(
                        "seal {digest} is in the log, but the seal chain up to it does not verify: the log was rewritten before this seal"
                    );
                    self.found(anchor_position, SEAL_STREAM, FindingKind::AnchorNotFound, detail);
                    None
                }
                None => {
                    let detail = format!(
                        "no seal of the log has digest {digest}: the log was rewritten or truncated before this seal"
                    );
                    self.found(anchor_position, SEAL_STREAM, FindingKind::AnchorNotFound, detail);
                    None
                }
            };
            self.report.anchors.push(AnchorResult { digest, found_at });
        }
        self.report.findings.sort_by_key(|f| f.position);
        self.report.unsealed = self.pending.len() as u64;
        self.report
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{SubsecRound, Utc};
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

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
}
