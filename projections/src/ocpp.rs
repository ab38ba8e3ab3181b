//! The `ocpp` read models: chargers (connection, boot info, last seen),
//! connector statuses, and live telemetry per transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::RecordedEvent;
use domain::charger::{ChargerEvent, OcppFrameEvent};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::runtime::{ProjectionError, Projector};

/// Name of the projector.
pub const NAME: &str = "ocpp";

/// Projects `charger.*` and `ocpp.*` events into `rm_ocpp`.
#[derive(Debug, Default)]
pub struct OcppProjector;

fn charger_id(event: &RecordedEvent) -> &str {
    event.stream_id.split_once('-').map_or("", |(_, id)| id)
}

#[async_trait]
impl Projector for OcppProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> &'static str {
        "rm_ocpp"
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let id = charger_id(event);
        let company = event.company_id().unwrap_or_default();
        let decode_error =
            |e: domain::EventDecodeError| ProjectionError::Decode { position: event.position, reason: e.to_string() };
        match event.category() {
            "ocpp" => {
                let heard_at = match event.decode::<OcppFrameEvent>().map_err(decode_error)? {
                    OcppFrameEvent::Received(f) => f.at,
                    OcppFrameEvent::RejectionsSummarized(s) => s.last_at,
                    OcppFrameEvent::Sent(_) => return Ok(()),
                };
                sqlx::query("UPDATE chargers SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = $1")
                    .bind(id)
                    .bind(heard_at)
                    .execute(&mut *conn)
                    .await?;
            }
            "charger" => match event.decode::<ChargerEvent>().map_err(decode_error)? {
                ChargerEvent::Connected(c) => {
                    sqlx::query(
                        "INSERT INTO chargers (id, company_id, connected, connection_id, gateway_id, protocol, connected_at, last_seen_at) \
                         VALUES ($1, $2, true, $3, $4, $5, $6, $6) \
                         ON CONFLICT (id) DO UPDATE SET connected = true, connection_id = $3, gateway_id = $4, protocol = $5, \
                         connected_at = $6, last_seen_at = GREATEST(chargers.last_seen_at, $6)",
                    )
                    .bind(id)
                    .bind(c.company_id)
                    .bind(c.connection_id)
                    .bind(c.gateway_id)
                    .bind(event.payload.get("protocol").and_then(|p| p.as_str()).unwrap_or_default())
                    .bind(c.at)
                    .execute(&mut *conn)
                    .await?;
                }
                ChargerEvent::Disconnected(d) => {
                    sqlx::query("UPDATE chargers SET connected = false, disconnected_at = $3 WHERE id = $1 AND connection_id = $2")
                        .bind(id)
                        .bind(d.connection_id)
                        .bind(d.at)
                        .execute(&mut *conn)
                        .await?;
                }
                ChargerEvent::Booted(b) => {
                    sqlx::query("UPDATE chargers SET vendor = $2, model = $3, serial_number = $4, firmware_version = $5, booted_at = $6 WHERE id = $1")
                        .bind(id)
                        .bind(&b.vendor)
                        .bind(&b.model)
                        .bind(&b.serial_number)
                        .bind(&b.firmware_version)
                        .bind(b.at)
                        .execute(&mut *conn)
                        .await?;
                }
                ChargerEvent::ConnectorStatusChanged(s) => {
                    sqlx::query(
                        "INSERT INTO connectors (charger_id, evse_id, connector_id, company_id, status, error_code, info, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (charger_id, evse_id, connector_id) DO UPDATE \
                         SET status = $5, error_code = $6, info = $7, updated_at = $8",
                    )
                    .bind(id)
                    .bind(s.evse_id.unwrap_or(0))
                    .bind(s.connector_id)
                    .bind(company)
                    .bind(&s.status)
                    .bind(&s.error_code)
                    .bind(&s.info)
                    .bind(s.timestamp)
                    .execute(&mut *conn)
                    .await?;
                }
                ChargerEvent::TransactionStarted(t) => {
                    sqlx::query(
                        "INSERT INTO transactions (charger_id, transaction_id, company_id, evse_id, connector_id, id_tag, started_at, meter_start_wh, energy_wh) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(&t.transaction_id)
                    .bind(company)
                    .bind(t.evse_id)
                    .bind(t.connector_id)
                    .bind(&t.id_tag)
                    .bind(t.started_at)
                    .bind(t.meter_start_wh)
                    .execute(&mut *conn)
                    .await?;
                }
                ChargerEvent::TransactionUpdated(_) => {}
                ChargerEvent::MeterValuesRecorded(m) => {
                    let Some(tx) = &m.transaction_id else { return Ok(()) };
                    for s in &m.samples {
                        sqlx::query(
                            "UPDATE transactions SET \
                               energy_wh = COALESCE($3 - meter_start_wh, energy_wh), \
                               meter_start_wh = COALESCE(meter_start_wh, $3), \
                               power_w = COALESCE($4, power_w), soc_percent = COALESCE($5, soc_percent), \
                               last_sample_at = GREATEST(last_sample_at, $6) \
                             WHERE charger_id = $1 AND transaction_id = $2",
                        )
                        .bind(id)
                        .bind(tx)
                        .bind(s.energy_wh)
                        .bind(s.power_w)
                        .bind(s.soc_percent)
                        .bind(s.timestamp)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                ChargerEvent::MeterAnomalyDetected(a) => {
                    sqlx::query("UPDATE transactions SET anomalies = anomalies + 1 WHERE charger_id = $1 AND transaction_id = $2")
                        .bind(id)
                        .bind(&a.transaction_id)
                        .execute(&mut *conn)
                        .await?;
                }
                ChargerEvent::SequenceGapDetected(g) => {
                    sqlx::query("UPDATE transactions SET sequence_gaps = sequence_gaps + 1 WHERE charger_id = $1 AND transaction_id = $2")
                        .bind(id)
                        .bind(&g.transaction_id)
                        .execute(&mut *conn)
                        .await?;
                }
                ChargerEvent::TransactionEnded(t) => {
                    sqlx::query(
                        "INSERT INTO transactions (charger_id, transaction_id, company_id, started_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(&t.transaction_id)
                    .bind(company)
                    .bind(t.stopped_at)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(
                        "UPDATE transactions SET ended_at = $3, stop_reason = $4, meter_stop_wh = $5, \
                           energy_wh = COALESCE($6, energy_wh), power_w = 0 \
                         WHERE charger_id = $1 AND transaction_id = $2",
                    )
                    .bind(id)
                    .bind(&t.transaction_id)
                    .bind(t.stopped_at)
                    .bind(&t.reason)
                    .bind(t.meter_stop_wh)
                    .bind(t.energy_wh)
                    .execute(&mut *conn)
                    .await?;
                }
            },
            _ => {}
        }
        Ok(())
    }
}

/// A charger's connection as the read model knows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerView {
    /// Connected to a gateway now.
    pub connected: bool,
    /// Negotiated protocol (`1.6` or `2.0.1`).
    pub protocol: String,
    /// Vendor from BootNotification.
    pub vendor: Option<String>,
    /// Model from BootNotification.
    pub model: Option<String>,
    /// Firmware from BootNotification.
    pub firmware_version: Option<String>,
    /// Last frame received.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// The charger's connection, if it ever connected (scoped to the company).
pub async fn charger(pool: &PgPool, company: Uuid, id: &str) -> Result<Option<ChargerView>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT connected, protocol, vendor, model, firmware_version, last_seen_at FROM rm_ocpp.chargers WHERE company_id = $1 AND id = $2",
    )
    .bind(company)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(ChargerView {
            connected: r.try_get("connected")?,
            protocol: r.try_get("protocol")?,
            vendor: r.try_get("vendor")?,
            model: r.try_get("model")?,
            firmware_version: r.try_get("firmware_version")?,
            last_seen_at: r.try_get("last_seen_at")?,
        })
    })
    .transpose()
}

/// A connector's status.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatusView {
    /// EVSE (0 for 1.6).
    pub evse_id: i64,
    /// Connector (0 is the whole charger in 1.6).
    pub connector_id: i64,
    /// OCPP status.
    pub status: String,
    /// 1.6 error code.
    pub error_code: Option<String>,
    /// When it changed.
    pub updated_at: DateTime<Utc>,
}

/// Connector statuses of a charger (scoped to the company).
pub async fn connectors(pool: &PgPool, company: Uuid, id: &str) -> Result<Vec<ConnectorStatusView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT evse_id, connector_id, status, error_code, updated_at FROM rm_ocpp.connectors \
         WHERE company_id = $1 AND charger_id = $2 ORDER BY evse_id, connector_id",
    )
    .bind(company)
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ConnectorStatusView {
                evse_id: r.try_get("evse_id")?,
                connector_id: r.try_get("connector_id")?,
                status: r.try_get("status")?,
                error_code: r.try_get("error_code")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Live telemetry of a transaction.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    /// Transaction id (1.6 integers as text).
    pub transaction_id: String,
    /// EVSE (2.0.1).
    pub evse_id: Option<i64>,
    /// Connector id the charger gave for the transaction, when it gave one.
    pub connector_id: Option<i64>,
    /// Id tag.
    pub id_tag: Option<String>,
    /// When the charger says it started; its stop time when only the end was seen.
    pub started_at: DateTime<Utc>,
    /// End, once ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Stop reason.
    pub stop_reason: Option<String>,
    /// Register at start, Wh.
    pub meter_start_wh: Option<i64>,
    /// Register at stop, Wh.
    pub meter_stop_wh: Option<i64>,
    /// Energy delivered so far, Wh.
    pub energy_wh: Option<i64>,
    /// Last power reading, W.
    pub power_w: Option<i64>,
    /// Last state of charge, %.
    pub soc_percent: Option<i64>,
    /// Last sample time.
    pub last_sample_at: Option<DateTime<Utc>>,
    /// Meter samples recorded as anomalies.
    pub anomalies: i32,
    /// 2.0.1 seqNo gaps noticed.
    pub sequence_gaps: i32,
}

/// Transactions of a charger, newest first (scoped to the company).
pub async fn transactions(
    pool: &PgPool,
    company: Uuid,
    id: &str,
    limit: i64,
) -> Result<Vec<TransactionView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT transaction_id, evse_id, connector_id, id_tag, started_at, ended_at, stop_reason, meter_start_wh, meter_stop_wh, \
                energy_wh, power_w, soc_percent, last_sample_at, anomalies, sequence_gaps \
         FROM rm_ocpp.transactions WHERE company_id = $1 AND charger_id = $2 ORDER BY started_at DESC, transaction_id LIMIT $3",
    )
    .bind(company)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TransactionView {
                transaction_id: r.try_get("transaction_id")?,
                evse_id: r.try_get("evse_id")?,
                connector_id: r.try_get("connector_id")?,
                id_tag: r.try_get("id_tag")?,
                started_at: r.try_get("started_at")?,
                ended_at: r.try_get("ended_at")?,
                stop_reason: r.try_get("stop_reason")?,
                meter_start_wh: r.try_get("meter_start_wh")?,
                meter_stop_wh: r.try_get("meter_stop_wh")?,
                energy_wh: r.try_get("energy_wh")?,
                power_w: r.try_get("power_w")?,
                soc_percent: r.try_get("soc_percent")?,
                last_sample_at: r.try_get("last_sample_at")?,
                anomalies: r.try_get("anomalies")?,
                sequence_gaps: r.try_get("sequence_gaps")?,
            })
        })
        .collect()
}
