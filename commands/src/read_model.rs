//! What the write side needs to know from read models comes through ports
//! (traits) that the read models' crate implements: `commands` never queries
//! read-model tables itself, so a column rename breaks at the implementation,
//! at compile and test time of `projections`.

/// Why a read model could not answer a port's question.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// The read model's database could not be reached or refused the query.
    #[error("a read model is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row did not have the shape the port promises (a migration and the
    /// code disagree).
    #[error("a read model holds an unreadable row")]
    Unreadable(#[source] Box<dyn std::error::Error + Send + Sync>),
}
