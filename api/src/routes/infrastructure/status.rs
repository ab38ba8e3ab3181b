//! Connector statuses, their summary, and adapter health. Every adapter
//! answers for the charge points mapped to it; the lists merge in key order.

use std::collections::BTreeMap;

use axum::{
    extract::{rejection::QueryRejection, Query, State},
    Json,
};
use chrono::{DateTime, Utc};
use commands::infrastructure::adapter::{ConnectorKey, ConnectorQuery, ConnectorStatus};
use domain::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{adapters, TAG};
use crate::{auth::Caller, error::ApiError, routes::page, state::AppState};

/// Connector statuses of OCPP 1.6 and 2.0.1.
pub(crate) const STATUSES: &[&str] = &[
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
    "Occupied",
];

/// Connector filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorParams {
    /// Only this station.
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    pub station_id: Option<i64>,
    /// Only this status (OCPP 1.6 or 2.0.1 name: Available, Charging, Faulted, Occupied, …).
    #[param(schema_with = crate::openapi::enums::connector_status)]
    pub status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(schema_with = crate::openapi::enums::connector_cursor)]
    pub cursor: Option<String>,
}

/// Summary filter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryParams {
    /// Only this station.
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    pub station_id: Option<i64>,
}

/// A connector of a mapped charge point.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    /// Station (from the mapping).
    pub station_id: i64,
    /// The mapping.
    pub mapping_id: Uuid,
    /// Adapter reaching it.
    pub adapter_type: String,
    /// Charge point.
    pub charge_point_id: String,
    /// EVSE (0 for OCPP 1.6).
    pub evse_id: i64,
    /// OCPP connector id, from 1 (connector 0, the whole charge point, is left out).
    pub connector_id: i64,
    /// Status as the charge point last reported it.
    #[schema(example = "Charging")]
    pub status: String,
    /// Error code reported with the status (OCPP 1.6).
    pub error_code: Option<String>,
    /// Whether the charge point is connected now (a disconnected one's status is its last known).
    pub connected: bool,
    /// Connector standard, from the terminal registration.
    pub connector_type: Option<String>,
    /// Maximum power, W, from the terminal registration.
    pub max_power_w: Option<i64>,
    /// When the status was reported.
    pub updated_at: DateTime<Utc>,
}

impl From<ConnectorStatus> for ConnectorView {
    fn from(c: ConnectorStatus) -> Self {
        Self {
            station_id: c.key.station_id,
            mapping_id: c.mapping_id,
            adapter_type: c.adapter_type.as_str().into(),
            charge_point_id: c.key.charge_point_id,
            evse_id: c.key.evse_id,
            connector_id: c.key.connector_id,
            status: c.status,
            error_code: c.error_code,
            connected: c.connected,
            connector_type: c.connector_type,
            max_power_w: c.max_power_w,
            updated_at: c.updated_at,
        }
    }
}

/// A page of connectors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorPage {
    /// By station, charge point, EVSE, connector.
    pub data: Vec<ConnectorView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Connector counts of one station.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationSummary {
    /// Station id these counts are for (from the mapping).
    pub station_id: i64,
    /// Connectors of the station that have reported a status, offline ones included.
    pub total: i64,
    /// Connectors whose charge point is not connected.
    pub offline: i64,
    /// Connectors per status (statuses with at least one).
    pub by_status: BTreeMap<String, i64>,
}

/// Connector counts by status, per station and overall.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorSummary {
    /// Connectors of every mapped charge point that have reported a status.
    pub total: i64,
    /// Connectors whose charge point is not connected.
    pub offline: i64,
    /// Connectors per status (statuses with at least one).
    #[schema(example = json!({"Available": 3, "Charging": 1}))]
    pub by_status: BTreeMap<String, i64>,
    /// Per station, by station id.
    pub stations: Vec<StationSummary>,
}

/// One adapter type's health.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdapterHealth {
    /// Adapter type this health is for (`ocpp`).
    pub adapter_type: String,
    /// `idle` (nothing mapped), `healthy` (nothing failing), `degraded` (some failing) or `down` (all failing).
    pub status: String,
    /// Stations with a live mapping to it.
    pub mapped_stations: i64,
    /// Charge points of those mappings.
    pub mapped_charge_points: i64,
    /// Of them, connected now.
    pub connected_charge_points: i64,
    /// Of them, failing: not connected now, or their last test failed.
    pub failing: i64,
    /// The failing charge points.
    pub failing_charge_points: Vec<String>,
    /// What the last failed test found.
    pub last_error: Option<String>,
    /// When that test ran.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When a test last passed.
    pub last_success_at: Option<DateTime<Utc>>,
}

/// Health of every adapter type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdapterHealthReport {
    /// One entry per adapter type.
    pub adapters: Vec<AdapterHealth>,
}

/// The shape of a connector cursor: `<stationId>.<evseId>.<connectorId>.<chargePointId>`
/// of the last connector of the page before; every string of this shape is a position.
pub(crate) const CURSOR_PATTERN: &str = "^-?[0-9]{1,18}\\.-?[0-9]{1,18}\\.-?[0-9]{1,18}\\.[A-Za-z0-9._:-]{1,48}$";

fn encode(key: &ConnectorKey) -> String {
    format!("{}.{}.{}.{}", key.station_id, key.evse_id, key.connector_id, key.charge_point_id)
}

fn decode(cursor: Option<&str>) -> Result<Option<ConnectorKey>, ApiError> {
    let Some(cursor) = cursor else { return Ok(None) };
    let number = |s: &str| {
        let digits = s.strip_prefix('-').unwrap_or(s);
        let ok = !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| s.parse::<i64>().ok()).flatten()
    };
    let mut parts = cursor.splitn(4, '.');
    let key = (|| {
        let (station_id, evse_id, connector_id) =
            (number(parts.next()?)?, number(parts.next()?)?, number(parts.next()?)?);
        let charge_point_id = parts.next().filter(|id| domain::TerminalId::is_shaped(id))?.to_owned();
        Some(ConnectorKey { station_id, evse_id, connector_id, charge_point_id })
    })();
    key.map(Some).ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new(
            "cursor",
            "must be <stationId>.<evseId>.<connectorId>.<chargePointId>, as nextCursor is",
        )])
    })
}

/// Every adapter's connectors for the query, merged in key order.
async fn gather(state: &AppState, query: &ConnectorQuery) -> Result<Vec<ConnectorStatus>, ApiError> {
    let mut rows = Vec::new();
    for adapter in adapters::all(state).all() {
        rows.extend(adapter.connectors(query).await.map_err(|e| ApiError::Unavailable(e.to_string()))?);
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

/// List connector statuses of mapped charge points (filters: station, status; cursor pagination).
#[utoipa::path(
    operation_id = "listConnectors",get, path = "/connectors", tag = TAG, params(ConnectorParams),
    responses((status = 200, body = ConnectorPage), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn connectors(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ConnectorParams>, QueryRejection>,
) -> Result<Json<ConnectorPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let limit = page::limit(p.limit)?;
    let after = decode(p.cursor.as_deref())?;
    page::one_of("status", p.status.as_deref(), STATUSES.iter().copied())?;
    let query = ConnectorQuery {
        company_id: caller.company_id,
        station_id: p.station_id,
        status: p.status,
        after,
        limit: Some(limit + 1),
    };
    let mut rows = gather(&state, &query).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode(&r.key))
    });
    Ok(Json(ConnectorPage {
        data: rows.into_iter().map(ConnectorView::from).collect(),
        next_cursor: next_cursor.flatten(),
    }))
}

/// Connector counts by status, per station and overall.
#[utoipa::path(get, path = "/connectors/summary", tag = TAG, params(SummaryParams),
    responses((status = 200, body = ConnectorSummary), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn connector_summary(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<SummaryParams>, QueryRejection>,
) -> Result<Json<ConnectorSummary>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let query = ConnectorQuery {
        company_id: caller.company_id,
        station_id: p.station_id,
        status: None,
        after: None,
        limit: None,
    };
    let rows = gather(&state, &query).await?;
    let mut summary = ConnectorSummary { total: 0, offline: 0, by_status: BTreeMap::new(), stations: vec![] };
    for row in rows {
        let offline = i64::from(!row.connected);
        if summary.stations.last().is_none_or(|s| s.station_id != row.key.station_id) {
            let station =
                StationSummary { station_id: row.key.station_id, total: 0, offline: 0, by_status: BTreeMap::new() };
            summary.stations.push(station);
        }
        if let Some(station) = summary.stations.last_mut() {
            station.total += 1;
            station.offline += offline;
            *station.by_status.entry(row.status.clone()).or_default() += 1;
        }
        summary.total += 1;
        summary.offline += offline;
        *summary.by_status.entry(row.status).or_default() += 1;
    }
    Ok(Json(summary))
}

/// CPMS adapter health: per adapter type, mapped stations, connected and failing charge points,
/// the last error and the last success of the connectivity tests.
#[utoipa::path(get, path = "/adapters/health", tag = TAG,
    responses((status = 200, body = AdapterHealthReport), (status = 401, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn adapter_health(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AdapterHealthReport>, ApiError> {
    let mapped = projections::infrastructure::mapped_charge_points(&state.pool, caller.company_id).await?;
    let summaries = projections::infrastructure::adapter_summaries(&state.pool, caller.company_id).await?;
    let mut report = AdapterHealthReport { adapters: vec![] };
    for adapter in adapters::all(&state).all() {
        let kind = adapter.kind();
        let charge_points: Vec<_> = mapped.iter().filter(|m| m.adapter_type == kind.as_str()).collect();
        let ids: Vec<String> = charge_points.iter().map(|m| m.charge_point_id.clone()).collect();
        let connected =
            adapter.connected(caller.company_id, &ids).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let failing_charge_points: Vec<String> = charge_points
            .iter()
            .filter(|m| !connected.contains(&m.charge_point_id) || m.last_result.as_deref().is_some_and(|r| r != "ok"))
            .map(|m| m.charge_point_id.clone())
            .collect();
        let summary = summaries.iter().find(|s| s.adapter_type == kind.as_str());
        let failing = failing_charge_points.len() as i64;
        let status = match (ids.len() as i64, failing) {
            (0, _) => "idle",
            (_, 0) => "healthy",
            (all, failing) if failing == all => "down",
            _ => "degraded",
        };
        report.adapters.push(AdapterHealth {
            adapter_type: kind.as_str().into(),
            status: status.into(),
            mapped_stations: summary.map_or(0, |s| s.stations),
            mapped_charge_points: ids.len() as i64,
            connected_charge_points: ids.iter().filter(|id| connected.contains(*id)).count() as i64,
            failing,
            failing_charge_points,
            last_error: summary.and_then(|s| s.last_error.clone()),
            last_error_at: summary.and_then(|s| s.last_error_at),
            last_success_at: summary.and_then(|s| s.last_success_at),
        });
    }
    Ok(Json(report))
}
