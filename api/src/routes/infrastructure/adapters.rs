//! The CPMS adapters of this process, and what the native OCPP adapter reads
//! from the read models.

use std::{collections::BTreeSet, sync::Arc};

use async_trait::async_trait;
use commands::{
    infrastructure::adapter::{Adapters, ConnectorQuery, ConnectorStatus, CpmsAdapter},
    read_model::ReadModelError,
};
use gateways::cpms::{OcppAdapter, OcppReadModel};
use sqlx::PgPool;
use uuid::Uuid;

use crate::state::AppState;

/// The OCPP adapter's view of the read models.
#[derive(Debug, Clone)]
struct ReadModels {
    pool: PgPool,
}

#[async_trait]
impl OcppReadModel for ReadModels {
    async fn connected(&self, company: Uuid, ids: &[String]) -> Result<BTreeSet<String>, ReadModelError> {
        projections::infrastructure::connected_charge_points(&self.pool, company, ids)
            .await
            .map_err(projections::read_model_error)
    }

    async fn connectors(&self, query: &ConnectorQuery) -> Result<Vec<ConnectorStatus>, ReadModelError> {
        projections::infrastructure::ocpp_connectors(&self.pool, query).await.map_err(projections::read_model_error)
    }
}

/// Every adapter, by type. Cheap: handles to the log, the pool and the gateway.
pub(super) fn all(state: &AppState) -> Adapters {
    let read_model = Arc::new(ReadModels { pool: state.pool.clone() });
    let ocpp: Arc<dyn CpmsAdapter> = Arc::new(OcppAdapter::new(state.store.clone(), state.gateway.clone(), read_model));
    Adapters::new([ocpp])
}
