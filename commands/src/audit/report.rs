//! What `chargeledger audit verify` reports.

use std::fmt;

use serde::Serialize;

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
