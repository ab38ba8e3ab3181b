//! The CPMS adapter port: what the charging-infrastructure routes need from
//! whatever reaches a station's charge points. The native OCPP gateway is the
//! first implementation (`gateways::cpms`); an OCPI adapter is another, looked
//! up by its [`AdapterType`] in [`Adapters`], without touching the routes.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::infrastructure::{AdapterType, ChargePointTest};
use secrecy::SecretString;
use uuid::Uuid;

/// Why an adapter could not answer (its own infrastructure failed, not a charge point).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{adapter} adapter: {message}")]
pub struct AdapterError {
    /// The adapter.
    pub adapter: AdapterType,
    /// What failed.
    pub message: String,
}

/// A mapping to test.
#[derive(Debug, Clone)]
pub struct TestTarget {
    /// Owner (every request the adapter makes is on its behalf).
    pub company_id: Uuid,
    /// The mapping.
    pub mapping_id: Uuid,
    /// Its CPMS-side charge point ids.
    pub charge_point_ids: Vec<String>,
    /// Who asked, for the metadata of what the test records.
    pub actor: String,
    /// Correlation id of the request.
    pub correlation_id: Uuid,
}

/// The company's settings for the adapter, credentials opened.
#[derive(Debug, Clone)]
pub struct TestSettings {
    /// Timeout of each request.
    pub timeout: Duration,
    /// Retries after a timeout.
    pub retries: u32,
    /// Credentials by name.
    pub credentials: BTreeMap<String, SecretString>,
}

/// Sort key of a connector in lists: station, charge point, EVSE, connector.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnectorKey {
    /// Station of the charge point's mapping; sorts first.
    pub station_id: i64,
    /// Charge point.
    pub charge_point_id: String,
    /// EVSE (0 for OCPP 1.6).
    pub evse_id: i64,
    /// Connector id within the EVSE (or charge point); sorts last.
    pub connector_id: i64,
}

/// Which connectors to list.
#[derive(Debug, Clone)]
pub struct ConnectorQuery {
    /// The company.
    pub company_id: Uuid,
    /// Only this station.
    pub station_id: Option<i64>,
    /// Only this status.
    pub status: Option<String>,
    /// Only after this key (keyset pagination).
    pub after: Option<ConnectorKey>,
    /// At most this many, in key order (`None`: all).
    pub limit: Option<i64>,
}

/// A connector of a mapped charge point, as its adapter reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorStatus {
    /// Where it sorts.
    pub key: ConnectorKey,
    /// The mapping the charge point belongs to.
    pub mapping_id: Uuid,
    /// The adapter reaching it.
    pub adapter_type: AdapterType,
    /// Status in the charge point's protocol (`Available`, `Charging`, `Occupied`, `Faulted`, …).
    pub status: String,
    /// Error code reported with it (OCPP 1.6).
    pub error_code: Option<String>,
    /// Whether the charge point is connected now.
    pub connected: bool,
    /// Connector standard, when the terminal registration names it.
    pub connector_type: Option<String>,
    /// Maximum power, W, when known.
    pub max_power_w: Option<i64>,
    /// When the status was reported.
    pub updated_at: DateTime<Utc>,
}

/// One way of reaching charge points (our OCPP gateway, an OCPI peer, …).
#[async_trait]
pub trait CpmsAdapter: Send + Sync + 'static {
    /// The adapter type it serves.
    fn kind(&self) -> AdapterType;

    /// Those of `charge_point_ids` this adapter cannot reach for the company
    /// (`ocpp`: not a terminal of the company). Checked before a mapping is written.
    async fn foreign_charge_points(
        &self,
        company_id: Uuid,
        charge_point_ids: &[String],
    ) -> Result<Vec<String>, AdapterError>;

    /// Those of `charge_point_ids` connected now.
    async fn connected(&self, company_id: Uuid, charge_point_ids: &[String]) -> Result<BTreeSet<String>, AdapterError>;

    /// A real connectivity test: for each charge point, in the target's order,
    /// whether it is connected and answers a request within the timeout.
    async fn test(&self, target: &TestTarget, settings: &TestSettings) -> Result<Vec<ChargePointTest>, AdapterError>;

    /// Connectors of the company's charge points mapped to this adapter, in
    /// [`ConnectorKey`] order, filtered and cut as the query says.
    async fn connectors(&self, query: &ConnectorQuery) -> Result<Vec<ConnectorStatus>, AdapterError>;
}

/// The adapters of this process, by type.
#[derive(Clone, Default)]
pub struct Adapters {
    by_kind: BTreeMap<AdapterType, Arc<dyn CpmsAdapter>>,
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kind.keys()).finish()
    }
}

impl Adapters {
    /// A registry of these adapters (a later one of the same kind replaces an earlier one).
    pub fn new(adapters: impl IntoIterator<Item = Arc<dyn CpmsAdapter>>) -> Self {
        Self { by_kind: adapters.into_iter().map(|a| (a.kind(), a)).collect() }
    }

    /// The adapter of a type, if this process has one.
    pub fn get(&self, kind: AdapterType) -> Option<Arc<dyn CpmsAdapter>> {
        self.by_kind.get(&kind).cloned()
    }

    /// Every adapter, by type.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn CpmsAdapter>> {
        self.by_kind.values()
    }
}
