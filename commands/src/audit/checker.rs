//! The one-pass checker: stream chains, version order and gaps, seals and anchors.

use std::collections::{BTreeMap, HashMap};

use domain::log::{LogEvent, RangeSealed, SEAL_STREAM};

use super::{AnchorResult, AuditReport, Finding, FindingKind, SealRef, VerifyOptions};
use crate::{
    hashing::{event_hash, merkle_leaf, merkle_root, parse_hex_hash, seal_digest, Hash, HashedFields, ZERO_HASH},
    store::RecordedEvent,
};

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

pub(super) struct Checker<'o> {
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
    pub(super) fn new(options: &'o VerifyOptions) -> Self {
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

    pub(super) fn event(&mut self, event: &RecordedEvent) {
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

    pub(super) fn finish(mut self) -> AuditReport {
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
