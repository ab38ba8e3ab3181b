//! Queries of the `infrastructure` read model, scoped to a company, and the
//! OCPP connector statuses of mapped charge points (joined with `rm_ocpp` and
//! `rm_terminals`) for the native OCPP adapter.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use commands::infrastructure::adapter::{ConnectorKey, ConnectorQuery, ConnectorStatus};
use domain::infrastructure::AdapterType;
use serde::Serialize;
use sqlx::{postgres::PgRow, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

/// The last connectivity test of a mapping.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastTestView {
    /// Whether every charge point passed.
    pub ok: bool,
    /// When it ran.
    pub tested_at: DateTime<Utc>,
    /// What failed (`CP-2: not_connected (…)`), when something did.
    pub error: Option<String>,
    /// The last test that passed.
    pub last_success_at: Option<DateTime<Utc>>,
}

/// A station-CPMS mapping.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MappingView {
    /// The mapping's id (its stream is `cpms_mapping-<id>`).
    pub id: Uuid,
    /// The company's station id; a station has at most one live mapping.
    pub station_id: i64,
    /// `ocpp` (our OCPP gateway).
    pub adapter_type: String,
    /// CPMS-side charge point ids (`ocpp`: terminal ids).
    pub charge_point_ids: Vec<String>,
    /// When the mapping was created (the time its `cpms_mapping.created` event carries).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The last connectivity test, if any.
    pub last_test: Option<LastTestView>,
    /// Version of the mapping's stream.
    pub version: i64,
}

const MAPPING_COLUMNS: &str = "id, station_id, adapter_type, charge_point_ids, created_at, updated_at, \
     last_test_at, last_test_ok, last_test_error, last_success_at, version";

fn mapping(r: &PgRow) -> Result<MappingView, sqlx::Error> {
    let tested_at: Option<DateTime<Utc>> = r.try_get("last_test_at")?;
    let ok: Option<bool> = r.try_get("last_test_ok")?;
    let ids: serde_json::Value = r.try_get("charge_point_ids")?;
    Ok(MappingView {
        id: r.try_get("id")?,
        station_id: r.try_get("station_id")?,
        adapter_type: r.try_get("adapter_type")?,
        charge_point_ids: serde_json::from_value(ids).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        last_test: match (tested_at, ok) {
            (Some(tested_at), Some(ok)) => Some(LastTestView {
                ok,
                tested_at,
                error: r.try_get("last_test_error")?,
                last_success_at: r.try_get("last_success_at")?,
            }),
            _ => None,
        },
        version: r.try_get("version")?,
    })
}

/// A live mapping of the company.
pub async fn get_mapping(pool: &PgPool, company: Uuid, id: Uuid) -> Result<Option<MappingView>, sqlx::Error> {
    let sql = format!(
        "SELECT {MAPPING_COLUMNS} FROM rm_infrastructure.mappings WHERE company_id = $1 AND id = $2 AND NOT deleted"
    );
    sqlx::query(&sql).bind(company).bind(id).fetch_optional(pool).await?.as_ref().map(mapping).transpose()
}

/// Live mappings of the company, newest first, after the keyset position `after`.
pub async fn list_mappings(
    pool: &PgPool,
    company: Uuid,
    station: Option<i64>,
    adapter: Option<AdapterType>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MappingView>, sqlx::Error> {
    let sql = format!(
        "SELECT {MAPPING_COLUMNS} FROM rm_infrastructure.mappings WHERE company_id = $1 AND NOT deleted \
         AND ($2::bigint IS NULL OR station_id = $2) AND ($3::text IS NULL OR adapter_type = $3) \
         AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) ORDER BY created_at DESC, id DESC LIMIT $6"
    );
    let rows = sqlx::query(&sql)
        .bind(company)
        .bind(station)
        .bind(adapter.map(|a| a.as_str()))
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(mapping).collect()
}

/// A charge point of a live mapping, with its last test.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedChargePoint {
    /// The mapping.
    pub mapping_id: Uuid,
    /// Station the mapping covers (the company's station id).
    pub station_id: i64,
    /// Adapter type of the mapping (`ocpp`), as the read model stores it.
    pub adapter_type: String,
    /// Charge point.
    pub charge_point_id: String,
    /// `ok`, `not_connected`, `rejected`, `timeout` or `error`, once tested.
    pub last_result: Option<String>,
    /// Error text of the last test.
    pub last_error: Option<String>,
    /// When last tested.
    pub last_tested_at: Option<DateTime<Utc>>,
}

/// Every charge point of the company's live mappings.
pub async fn mapped_charge_points(pool: &PgPool, company: Uuid) -> Result<Vec<MappedChargePoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT m.id, m.station_id, m.adapter_type, p.charge_point_id, p.last_result, p.last_error, p.last_tested_at \
         FROM rm_infrastructure.mappings m JOIN rm_infrastructure.charge_points p ON p.mapping_id = m.id \
         WHERE m.company_id = $1 AND NOT m.deleted ORDER BY m.station_id, p.position",
    )
    .bind(company)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MappedChargePoint {
                mapping_id: r.try_get("id")?,
                station_id: r.try_get("station_id")?,
                adapter_type: r.try_get("adapter_type")?,
                charge_point_id: r.try_get("charge_point_id")?,
                last_result: r.try_get("last_result")?,
                last_error: r.try_get("last_error")?,
                last_tested_at: r.try_get("last_tested_at")?,
            })
        })
        .collect()
}

/// Test history of one adapter type's live mappings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterSummary {
    /// Adapter type these figures are for (`ocpp`).
    pub adapter_type: String,
    /// Live mappings (one per station).
    pub stations: i64,
    /// The last test that passed.
    pub last_success_at: Option<DateTime<Utc>>,
    /// What the last failed test found.
    pub last_error: Option<String>,
    /// When that test ran.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Per adapter type: stations mapped, last success, last failure.
pub async fn adapter_summaries(pool: &PgPool, company: Uuid) -> Result<Vec<AdapterSummary>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT adapter_type, count(*) AS stations, max(last_success_at) AS last_success_at, \
           (array_agg(last_test_error ORDER BY last_test_at DESC) FILTER (WHERE NOT last_test_ok))[1] AS last_error, \
           max(last_test_at) FILTER (WHERE NOT last_test_ok) AS last_error_at \
         FROM rm_infrastructure.mappings WHERE company_id = $1 AND NOT deleted GROUP BY adapter_type ORDER BY adapter_type",
    )
    .bind(company)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AdapterSummary {
                adapter_type: r.try_get("adapter_type")?,
                stations: r.try_get("stations")?,
                last_success_at: r.try_get("last_success_at")?,
                last_error: r.try_get("last_error")?,
                last_error_at: r.try_get("last_error_at")?,
            })
        })
        .collect()
}

/// An adapter's settings as callers see them.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfigView {
    /// Adapter type the settings apply to (`ocpp`).
    pub adapter_type: String,
    /// Timeout, ms.
    pub timeout_ms: i64,
    /// Retries allowed after a request times out (0 to 10).
    pub retries: i64,
    /// Names of the credentials that have a value.
    pub credential_names: Vec<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The company's configured adapters.
pub async fn adapter_configs(pool: &PgPool, company: Uuid) -> Result<Vec<AdapterConfigView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT adapter_type, timeout_ms, retries, credential_names, updated_at FROM rm_infrastructure.adapter_configs \
         WHERE company_id = $1 ORDER BY adapter_type",
    )
    .bind(company)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let names: serde_json::Value = r.try_get("credential_names")?;
            Ok(AdapterConfigView {
                adapter_type: r.try_get("adapter_type")?,
                timeout_ms: r.try_get("timeout_ms")?,
                retries: r.try_get("retries")?,
                credential_names: serde_json::from_value(names).unwrap_or_default(),
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Those of `ids` that the OCPP read model knows as connected now.
pub async fn connected_charge_points(
    pool: &PgPool,
    company: Uuid,
    ids: &[String],
) -> Result<BTreeSet<String>, sqlx::Error> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT id FROM rm_ocpp.chargers WHERE company_id = $1 AND id = ANY($2) AND connected")
            .bind(company)
            .bind(ids)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Connector statuses of the company's charge points mapped to `ocpp`, in
/// (station, charge point, EVSE, connector) order, byte-wise on the charge point
/// id so that pages from several adapters merge. Connector 0 (the whole 1.6
/// charge point) is not a connector and is left out.
pub async fn ocpp_connectors(pool: &PgPool, query: &ConnectorQuery) -> Result<Vec<ConnectorStatus>, sqlx::Error> {
    let after = query.after.as_ref();
    let rows = sqlx::query(
        "SELECT m.id AS mapping_id, m.station_id, p.charge_point_id, c.evse_id, c.connector_id, c.status, c.error_code, \
                c.updated_at, COALESCE(ch.connected, false) AS connected, \
                tc.conn->>'type' AS connector_type, (tc.conn->>'maxPowerW')::bigint AS max_power_w \
         FROM rm_infrastructure.mappings m \
         JOIN rm_infrastructure.charge_points p ON p.mapping_id = m.id \
         JOIN rm_terminals.terminals t ON t.id = p.charge_point_id AND t.company_id = m.company_id \
         JOIN rm_ocpp.connectors c ON c.charger_id = p.charge_point_id AND c.company_id = m.company_id \
         LEFT JOIN rm_ocpp.chargers ch ON ch.id = p.charge_point_id AND ch.company_id = m.company_id \
         LEFT JOIN LATERAL (SELECT x AS conn FROM jsonb_array_elements(t.connectors) x \
                            WHERE (x->>'id')::bigint = c.connector_id LIMIT 1) tc ON true \
         WHERE m.company_id = $1 AND NOT m.deleted AND m.adapter_type = 'ocpp' AND c.connector_id > 0 \
           AND ($2::bigint IS NULL OR m.station_id = $2) AND ($3::text IS NULL OR c.status = $3) \
           AND ($4::bigint IS NULL OR (m.station_id, p.charge_point_id COLLATE \"C\", c.evse_id, c.connector_id) \
                                      > ($4, $5::text COLLATE \"C\", $6, $7)) \
         ORDER BY m.station_id, p.charge_point_id COLLATE \"C\", c.evse_id, c.connector_id LIMIT $8",
    )
    .bind(query.company_id)
    .bind(query.station_id)
    .bind(query.status.as_deref())
    .bind(after.map(|a| a.station_id))
    .bind(after.map(|a| a.charge_point_id.as_str()))
    .bind(after.map(|a| a.evse_id))
    .bind(after.map(|a| a.connector_id))
    .bind(query.limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ConnectorStatus {
                key: ConnectorKey {
                    station_id: r.try_get("station_id")?,
                    charge_point_id: r.try_get("charge_point_id")?,
                    evse_id: r.try_get("evse_id")?,
                    connector_id: r.try_get("connector_id")?,
                },
                mapping_id: r.try_get("mapping_id")?,
                adapter_type: AdapterType::Ocpp,
                status: r.try_get("status")?,
                error_code: r.try_get("error_code")?,
                connected: r.try_get("connected")?,
                connector_type: r.try_get("connector_type")?,
                max_power_w: r.try_get("max_power_w")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}
