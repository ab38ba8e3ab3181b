//! Read models of chargeledger, built from the event log by projectors.
//!
//! [`runtime`] runs projectors (checkpoint in the same transaction as the
//! read-model writes, catch-up, live tail, rebuild-and-swap); each read model is
//! a module with its projector and its queries.

pub mod charger_directory;
pub mod infrastructure;
pub mod ocpp;
pub mod payments;
pub mod runtime;
pub mod sessions;
pub mod terminals;
pub mod webhooks;

use std::sync::Arc;

pub use runtime::{ProjectionError, Projector};

/// Every projector of the platform.
pub fn all() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(terminals::TerminalsProjector),
        Arc::new(ocpp::OcppProjector),
        Arc::new(payments::PaymentsProjector),
        Arc::new(sessions::SessionsProjector),
        Arc::new(infrastructure::InfrastructureProjector),
        Arc::new(webhooks::WebhooksProjector),
    ]
}

/// The projector of that name.
pub fn by_name(name: &str) -> Option<Arc<dyn Projector>> {
    all().into_iter().find(|p| p.name() == name)
}

/// A failed port query: a row the port cannot read, or the database itself.
pub fn read_model_error(error: sqlx::Error) -> commands::read_model::ReadModelError {
    use commands::read_model::ReadModelError;
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) | sqlx::Error::Decode(_) => {
            ReadModelError::Unreadable(Box::new(error))
        }
        other => ReadModelError::Unavailable(Box::new(other)),
    }
}
