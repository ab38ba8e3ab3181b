//! `chargeledger audit verify`: recomputes every stream's hash chain and every
//! seal from the stored rows and reports every broken link, by kind.
//!
//! One pass in position order. After a break the checker resynchronises on what
//! is stored (a stream's chain on the stored hash, the seal chain on the stored
//! digest), so one altered event is one finding, not one for every later event.

mod checker;
mod report;
#[cfg(test)]
mod tests;

use futures::StreamExt;

use self::checker::Checker;
pub use self::report::{AnchorResult, AuditReport, Finding, FindingKind, SealRef};
use crate::{
    hashing::Hash,
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
