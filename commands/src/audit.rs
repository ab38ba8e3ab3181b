//! `chargeledger audit verify`: recomputes every stream's hash chain and every
//! seal from the stored rows, and names the first broken link.

use std::collections::HashMap;

use domain::log::{LogEvent, SEAL_STREAM};
use futures::StreamExt;

use crate::{
    hashing::{event_hash, merkle_leaf, merkle_root, parse_hex_hash, seal_digest, Hash, HashedFields, ZERO_HASH},
    store::{EventStore, RecordedEvent, StoreError, EVENT_COLUMNS},
};

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Events whose hash and chain were checked.
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// Seals checked.
    pub seals: u64,
    /// Last position covered by a seal.
    pub sealed_through: i64,
    /// Events after the last seal (chained, not yet sealed).
    pub unsealed: u64,
    /// The first broken link, if any.
    pub broken: Option<Broken>,
}

/// The first place where the log does not match its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Global position of the offending event (or of the seal that fails).
    pub position: i64,
    /// Stream of that event.
    pub stream_id: String,
    /// What is wrong.
    pub reason: String,
}

impl AuditReport {
    /// Whether the log verified.
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the whole log in one pass in position order. Memory grows with the
/// number of streams (last version and hash of each) and the unsealed tail.
pub async fn verify(store: &EventStore) -> Result<AuditReport, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY position");
    let mut rows = sqlx::query(&sql).fetch(store.pool());
    let mut streams: HashMap<String, (i64, Hash)> = HashMap::new();
    let mut pending: Vec<(i64, Hash)> = Vec::new();
    let mut report = AuditReport { events: 0, streams: 0, seals: 0, sealed_through: 0, unsealed: 0, broken: None };
    let mut previous_seal = ZERO_HASH;

    while let Some(row) = rows.next().await {
        let event = RecordedEvent::from_row(&row?)?;
        let fail = |reason: String| Broken { position: event.position, stream_id: event.stream_id.clone(), reason };
        let (last_version, last_hash) = streams.get(&event.stream_id).copied().unwrap_or((0, ZERO_HASH));
        if event.stream_version != last_version + 1 {
            let reason =
                format!("stream version {} follows version {last_version}: an event is missing", event.stream_version);
            report.broken = Some(fail(reason));
            break;
        }
        if event.prev_hash != last_hash {
            report.broken = Some(fail("previous-hash link does not match the stream's previous event".into()));
            break;
        }
        let recomputed = event_hash(
            &last_hash,
            &HashedFields {
                stream_id: &event.stream_id,
                stream_version: event.stream_version,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                metadata: &event.metadata,
                recorded_at: event.recorded_at,
            },
        );
        if event.hash != recomputed {
            report.broken = Some(fail("content does not match its hash: the event was altered".into()));
            break;
        }
        streams.insert(event.stream_id.clone(), (event.stream_version, recomputed));
        report.events += 1;

        if event.stream_id == SEAL_STREAM {
            if let Err(reason) = check_seal(&event, &mut pending, &mut previous_seal, &mut report) {
                report.broken = Some(fail(reason));
                break;
            }
        }
        pending.push((event.position, recomputed));
    }
    report.streams = streams.len() as u64;
    report.unsealed = pending.len() as u64;
    Ok(report)
}

fn check_seal(
    event: &RecordedEvent,
    pending: &mut Vec<(i64, Hash)>,
    previous_seal: &mut Hash,
    report: &mut AuditReport,
) -> Result<(), String> {
    let LogEvent::RangeSealed(seal) = event.decode::<LogEvent>().map_err(|e| format!("seal is unreadable: {e}"))?;
    if seal.after_position != report.sealed_through {
        return Err(format!(
            "seal starts after position {} but the previous seal ends at {}: a seal is missing",
            seal.after_position, report.sealed_through
        ));
    }
    if parse_hex_hash(&seal.previous_seal) != Some(*previous_seal) {
        return Err("seal does not chain to the previous seal".into());
    }
    let covered: Vec<Hash> = pending
        .iter()
        .filter(|(p, _)| *p > seal.after_position && *p <= seal.to_position)
        .map(|(p, h)| merkle_leaf(*p, h))
        .collect();
    let root = merkle_root(&covered);
    if covered.len() as i64 != seal.event_count || parse_hex_hash(&seal.merkle_root) != Some(root) {
        return Err(format!(
            "range ({}, {}] sealed {} events but now holds {} with another Merkle root: an event was deleted, added or altered",
            seal.after_position,
            seal.to_position,
            seal.event_count,
            covered.len()
        ));
    }
    let digest = seal_digest(previous_seal, seal.after_position, seal.to_position, seal.event_count, &root);
    if parse_hex_hash(&seal.seal) != Some(digest) {
        return Err("seal digest does not match its range".into());
    }
    pending.retain(|(p, _)| *p > seal.to_position);
    *previous_seal = digest;
    report.sealed_through = seal.to_position;
    report.seals += 1;
    Ok(())
}
