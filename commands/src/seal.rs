//! The sealer: seals each committed range of global positions into a Merkle
//! root chained to the previous seal, and records the seal in the log.
//!
//! It runs behind the read watermark, so a range never changes once sealed,
//! and writers never wait for it (no global hash chain at append time).

use chrono::{SubsecRound, Utc};
use domain::{
    log::{LogEvent, RangeSealed, SEAL_STREAM},
    DomainEvent,
};
use sqlx::Row;

use crate::{
    hashing::{merkle_leaf, merkle_root, parse_hex_hash, seal_digest, Hash, ZERO_HASH},
    store::{EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, StreamWrite, WATERMARK},
};

/// Most events one seal covers; a longer backlog is sealed in several ranges.
pub const MAX_SEAL_RANGE: i64 = 50_000;

/// The last seal and the version of the seal stream.
async fn last_seal(store: &EventStore) -> Result<(i64, Option<RangeSealed>, Option<Hash>), StoreError> {
    let row = sqlx::query(
        "SELECT stream_version, event_type, schema_version, payload, hash FROM events \
         WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
    )
    .bind(SEAL_STREAM)
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else {
        return Ok((0, None, None));
    };
    let version: i64 = row.try_get("stream_version")?;
    let event_type: String = row.try_get("event_type")?;
    let schema_version: i32 = row.try_get("schema_version")?;
    let hash: Vec<u8> = row.try_get("hash")?;
    // An unreadable last seal must stop the sealer, not restart it from 0.
    let LogEvent::RangeSealed(seal) =
        LogEvent::from_record(&event_type, schema_version as u32, row.try_get("payload")?)
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?;
    let seal = Some(seal);
    Ok((version, seal, hash.as_slice().try_into().ok()))
}

/// Seals what is committed and not yet sealed. Returns the seal made, if any.
/// A range holding nothing but the previous seal event is left for later, so an
/// idle log is not sealed over and over.
pub async fn seal_once(store: &EventStore) -> Result<Option<RangeSealed>, StoreError> {
    let (version, previous, previous_event_hash) = last_seal(store).await?;
    let after = previous.as_ref().map_or(0, |s| s.to_position);
    let previous_seal = previous.as_ref().and_then(|s| parse_hex_hash(&s.seal)).unwrap_or(ZERO_HASH);

    let sql = format!(
        "SELECT position, hash, stream_id FROM events WHERE position > $1 AND position < {WATERMARK} ORDER BY position LIMIT $2"
    );
    let rows = sqlx::query(&sql).bind(after).bind(MAX_SEAL_RANGE).fetch_all(store.pool()).await?;
    let mut leaves = Vec::with_capacity(rows.len());
    let mut to = after;
    let mut has_news = false;
    for row in &rows {
        let position: i64 = row.try_get("position")?;
        let hash: Vec<u8> = row.try_get("hash")?;
        let stream: &str = row.try_get("stream_id")?;
        has_news |= stream != SEAL_STREAM;
        leaves.push(merkle_leaf(position, &hash));
        to = position;
    }
    if !has_news {
        return Ok(None);
    }
    let count = leaves.len() as i64;
    let root = merkle_root(&leaves);
    let seal = seal_digest(&previous_seal, after, to, count, &root);
    let sealed = RangeSealed {
        after_position: after,
        to_position: to,
        event_count: count,
        merkle_root: hex::encode(root),
        previous_seal: hex::encode(previous_seal),
        seal: hex::encode(seal),
        sealed_at: Utc::now().trunc_subsecs(6),
    };
    let write = StreamWrite {
        stream_id: SEAL_STREAM.to_owned(),
        expected: ExpectedVersion::Exact(version),
        prev_hash: previous_event_hash,
        events: vec![NewEvent::from_domain(&LogEvent::RangeSealed(sealed.clone()))],
        metadata: Metadata::system("sealer"),
    };
    match store.append(&[write], None).await {
        Ok(_) => Ok(Some(sealed)),
        // Another sealer got there first; its seal is as good as ours.
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Seals until the backlog is covered.
pub async fn seal_all(store: &EventStore) -> Result<usize, StoreError> {
    let mut seals = 0;
    while seal_once(store).await?.is_some() {
        seals += 1;
    }
    Ok(seals)
}
