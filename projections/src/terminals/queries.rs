//! Queries on the terminals read model. Every one is scoped to a company.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

/// A connector as shown by the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    /// OCPP connector id.
    pub id: u32,
    /// Connector standard (Type1, Type2, CCS1, CCS2, CHAdeMO, GB/T, NACS, Domestic).
    #[serde(rename = "type")]
    pub connector_type: String,
    /// Maximum power in watts.
    pub max_power_w: u32,
    /// Status the charger last reported for this connector over OCPP, if any.
    #[serde(default)]
    pub status: Option<String>,
}

/// A terminal as shown by the API.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TerminalView {
    /// Charge point identity (`EVSE-001`).
    pub id: String,
    /// Station the terminal belongs to (the company's station id).
    pub station_id: i64,
    /// Manufacturer name, as registered.
    pub vendor: String,
    /// Model name, as registered.
    pub model: String,
    /// `1.6` or `2.0.1`.
    pub ocpp_version: String,
    /// Registered connectors, each with the status the charger last reported.
    pub connectors: Vec<ConnectorView>,
    /// Whether an OCPP basic-auth password is set (the password is never shown).
    pub has_password: bool,
    /// OCPP security profile: 0 no credentials (registered so explicitly),
    /// 1 HTTP Basic, 2 TLS and HTTP Basic.
    pub security_profile: i16,
    /// Current status.
    pub status: String,
    /// Reason given with the status.
    pub status_reason: Option<String>,
    /// Last heartbeat or health report.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Connected to the OCPP gateway now.
    pub connected: bool,
    /// Connected, or seen within the online window.
    pub online: bool,
    /// Registration time.
    pub registered_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version of the terminal's event stream.
    pub version: i64,
}

/// Filters of the terminal list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this station.
    pub station_id: Option<i64>,
    /// Resume after this terminal id (from the previous page's cursor).
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The page's rows, at most the filter's limit.
    pub items: Vec<T>,
    /// Id after which the next page starts, if there is one.
    pub next_after: Option<String>,
}

/// Fleet statistics.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TerminalStats {
    /// Terminals registered.
    pub total: i64,
    /// Count per status (every status listed, zeros included).
    pub by_status: std::collections::BTreeMap<String, i64>,
    /// Connected over OCPP, or seen within the online window.
    pub online: i64,
    /// Not seen within it.
    pub offline: i64,
    /// `online / total`, 0 when there are none.
    pub online_ratio: f64,
    /// Fault reports in the last 24 hours.
    pub faults_last_24h: i64,
    /// The online window, in seconds.
    pub online_window_seconds: i64,
}

/// Terminals with what the OCPP gateway knows of them (connection, last frame,
/// connector statuses).
const FROM: &str =
    "rm_terminals.terminals t LEFT JOIN rm_ocpp.chargers c ON c.id = t.id AND c.company_id = t.company_id";

const COLUMNS: &str = "t.id, t.station_id, t.vendor, t.model, t.ocpp_version, t.connectors, t.password_hash IS NOT NULL AS has_password, t.security_profile, \
     t.status, t.status_reason, GREATEST(t.last_seen_at, c.last_seen_at) AS last_seen_at, COALESCE(c.connected, false) AS connected, \
     COALESCE(c.connected OR GREATEST(t.last_seen_at, c.last_seen_at) > now() - $2 * interval '1 second', false) AS online, \
     (SELECT jsonb_object_agg(k.connector_id::text, k.status) FROM rm_ocpp.connectors k WHERE k.charger_id = t.id) AS live, \
     t.registered_at, t.updated_at, t.version";

fn view(row: &sqlx::postgres::PgRow) -> Result<TerminalView, sqlx::Error> {
    let connectors: serde_json::Value = row.try_get("connectors")?;
    let mut connectors: Vec<ConnectorView> =
        serde_json::from_value(connectors).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let live: Option<serde_json::Value> = row.try_get("live")?;
    for c in &mut connectors {
        c.status = live.as_ref().and_then(|l| l.get(c.id.to_string())).and_then(|s| s.as_str()).map(str::to_owned);
    }
    Ok(TerminalView {
        id: row.try_get("id")?,
        station_id: row.try_get("station_id")?,
        vendor: row.try_get("vendor")?,
        model: row.try_get("model")?,
        ocpp_version: row.try_get("ocpp_version")?,
        connectors,
        connected: row.try_get("connected")?,
        has_password: row.try_get("has_password")?,
        security_profile: row.try_get("security_profile")?,
        status: row.try_get("status")?,
        status_reason: row.try_get("status_reason")?,
        last_seen_at: row.try_get("last_seen_at")?,
        online: row.try_get("online")?,
        registered_at: row.try_get("registered_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

/// One terminal of the company.
pub async fn get(
    pool: &PgPool,
    company: Uuid,
    id: &str,
    online_window: Duration,
) -> Result<Option<TerminalView>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE t.company_id = $1 AND t.id = $3");
    let row = sqlx::query(&sql).bind(company).bind(online_window.num_seconds()).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(view).transpose()
}

/// A page of the company's terminals, ordered by id.
pub async fn list(
    pool: &PgPool,
    company: Uuid,
    filter: &ListFilter,
    online_window: Duration,
) -> Result<Page<TerminalView>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE t.company_id = $1 \
         AND ($3::text IS NULL OR t.status = $3) AND ($4::bigint IS NULL OR t.station_id = $4) \
         AND ($5::text IS NULL OR t.id > $5) ORDER BY t.id LIMIT $6"
    );
    let rows = sqlx::query(&sql)
        .bind(company)
        .bind(online_window.num_seconds())
        .bind(&filter.status)
        .bind(filter.station_id)
        .bind(&filter.after)
        .bind(filter.limit + 1)
        .fetch_all(pool)
        .await?;
    let mut items = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
    let next_after = if items.len() as i64 > filter.limit {
        items.truncate(filter.limit as usize);
        items.last().map(|t| t.id.clone())
    } else {
        None
    };
    Ok(Page { items, next_after })
}

/// Fleet statistics of the company.
pub async fn stats(
    pool: &PgPool,
    company: Uuid,
    online_window: Duration,
    statuses: &[&str],
) -> Result<TerminalStats, sqlx::Error> {
    let rows =
        sqlx::query("SELECT status, count(*) AS n FROM rm_terminals.terminals WHERE company_id = $1 GROUP BY status")
            .bind(company)
            .fetch_all(pool)
            .await?;
    let mut by_status: std::collections::BTreeMap<String, i64> =
        statuses.iter().map(|s| ((*s).to_owned(), 0)).collect();
    for row in &rows {
        by_status.insert(row.try_get("status")?, row.try_get("n")?);
    }
    let row = sqlx::query(
        "SELECT count(*) AS total, \
                count(*) FILTER (WHERE COALESCE(c.connected, false) \
                                    OR GREATEST(t.last_seen_at, c.last_seen_at) > now() - $2 * interval '1 second') AS online, \
                (SELECT count(*) FROM rm_terminals.health_events \
                  WHERE company_id = $1 AND kind = 'fault' AND occurred_at > now() - interval '24 hours') AS faults \
         FROM rm_terminals.terminals t LEFT JOIN rm_ocpp.chargers c ON c.id = t.id AND c.company_id = t.company_id \
         WHERE t.company_id = $1",
    )
    .bind(company)
    .bind(online_window.num_seconds())
    .fetch_one(pool)
    .await?;
    let total: i64 = row.try_get("total")?;
    let online: i64 = row.try_get("online")?;
    Ok(TerminalStats {
        total,
        by_status,
        online,
        offline: total - online,
        online_ratio: if total == 0 { 0.0 } else { online as f64 / total as f64 },
        faults_last_24h: row.try_get("faults")?,
        online_window_seconds: online_window.num_seconds(),
    })
}

/// The stored Argon2 hash of a terminal's OCPP password, as the read model has
/// it (it may lag the log: the gateway's handshake reads
/// `commands::terminals::credentials` instead).
pub async fn password_hash(pool: &PgPool, id: &str) -> Result<Option<(Uuid, Option<String>)>, sqlx::Error> {
    let row = sqlx::query("SELECT company_id, password_hash FROM rm_terminals.terminals WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((r.try_get("company_id")?, r.try_get("password_hash")?))).transpose()
}
