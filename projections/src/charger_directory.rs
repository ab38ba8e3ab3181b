//! [`ChargerDirectory`] over the `terminals` and `ocpp` read models: what a
//! session start asks of its charger, in one query.

use async_trait::async_trait;
use commands::sessions::{ChargerDirectory, ChargerSnapshot, ReadModelError};
use domain::{terminal::OcppVersion, CompanyId, TerminalId};
use serde::Deserialize;
use sqlx::{PgPool, Row};

/// A connector as `rm_terminals.terminals.connectors` records it (only the id
/// is asked for).
#[derive(Deserialize)]
struct Registered {
    id: u32,
}

/// [`ChargerDirectory`] over the read models in a pool.
#[derive(Debug, Clone)]
pub struct ReadModelChargerDirectory {
    pool: PgPool,
}

impl ReadModelChargerDirectory {
    /// The directory on the read models in `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl ChargerDirectory for ReadModelChargerDirectory {
    async fn charger(
        &self,
        company: CompanyId,
        charge_point: &TerminalId,
        connector: i64,
    ) -> Result<Option<ChargerSnapshot>, ReadModelError> {
        let row = sqlx::query(
            "SELECT t.connectors, c.connected, c.protocol, \
               (SELECT k.status FROM rm_ocpp.connectors k \
                 WHERE k.company_id = t.company_id AND k.charger_id = t.id AND k.connector_id = $3 \
                 ORDER BY k.evse_id LIMIT 1) AS connector_status \
             FROM rm_terminals.terminals t \
             LEFT JOIN rm_ocpp.chargers c ON c.id = t.id AND c.company_id = t.company_id \
             WHERE t.company_id = $1 AND t.id = $2",
        )
        .bind(company.as_uuid())
        .bind(charge_point.as_str())
        .bind(connector)
        .fetch_optional(&self.pool)
        .await
        .map_err(crate::read_model_error)?;
        let Some(row) = row else { return Ok(None) };
        let snapshot = || -> Result<ChargerSnapshot, sqlx::Error> {
            let connectors: serde_json::Value = row.try_get("connectors")?;
            let registered: Vec<Registered> =
                serde_json::from_value(connectors).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let protocol: Option<String> = row.try_get("protocol")?;
            Ok(ChargerSnapshot {
                registered_connectors: registered.iter().map(|c| i64::from(c.id)).collect(),
                connector_status: row.try_get("connector_status")?,
                connected: row.try_get::<Option<bool>, _>("connected")?.unwrap_or(false),
                protocol: protocol.as_deref().map(OcppVersion::from_protocol),
            })
        };
        snapshot().map(Some).map_err(crate::read_model_error)
    }
}
