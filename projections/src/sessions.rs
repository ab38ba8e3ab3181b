//! The `sessions` read model: charge sessions for lists and for the queue
//! sweeper (what is due: settlements, refunds, receipts, start timeouts).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::{
    sessions::{DueQuery, DueSession, ReadModelError, SessionQueue},
    RecordedEvent,
};
use domain::{
    session::{SessionEvent as E, SessionKind},
    Aggregate, CompanyId,
};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::runtime::{ProjectionError, Projector};

/// Name of the projector.
pub const NAME: &str = "sessions";

/// Projects `charge_session.*` into `rm_sessions`.
#[derive(Debug, Default)]
pub struct SessionsProjector;

#[async_trait]
impl Projector for SessionsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> &'static str {
        "rm_sessions"
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if event.category() != domain::session::ChargeSession::CATEGORY {
            return Ok(());
        }
        let id = event.stream_id.split_once('-').and_then(|(_, id)| Uuid::parse_str(id).ok()).unwrap_or_default();
        let decoded = event
            .decode::<E>()
            .map_err(|e| ProjectionError::Decode { position: event.position, reason: e.to_string() })?;
        let at = event.recorded_at;
        let update = |sql: &'static str| sqlx::query(sql).bind(id).bind(at);
        let status = |s: &'static str| {
            sqlx::query("UPDATE sessions SET status = $3, updated_at = $2 WHERE id = $1").bind(id).bind(at).bind(s)
        };
        match decoded {
            E::Started(s) => {
                sqlx::query(
                    "INSERT INTO sessions (id, company_id, kind, status, station_id, charge_point_id, connector_id, method, payment_intent_id, \
                     preauth_amount, started_at, updated_at, customer_id) VALUES ($1, $2, $3, 'PREAUTHORIZING', $4, $5, $6, $7, $8, $9, $10, $10, $11)",
                )
                .bind(id)
                .bind(s.company_id)
                .bind(if s.kind == SessionKind::Ocpp { "ocpp" } else { "adhoc" })
                .bind(s.station_id)
                .bind(&s.charge_point_id)
                .bind(s.connector_id)
                .bind(s.method.as_str())
                .bind(s.payment_intent_id)
                .bind(s.preauth_amount)
                .bind(s.at)
                .bind(&s.customer_id)
                .execute(&mut *conn)
                .await?;
            }
            E::PaymentAuthorized(a) => {
                update("UPDATE sessions SET status = 'AUTHORIZED', authorized = $3, updated_at = $2 WHERE id = $1")
                    .bind(a.amount)
                    .execute(&mut *conn)
                    .await?;
            }
            E::PaymentFailed(_) => status("FAILED").execute(&mut *conn).await.map(drop)?,
            E::RemoteStartSent(r) => {
                update("UPDATE sessions SET remote_start_at = $3, updated_at = $2 WHERE id = $1")
                    .bind(r.at)
                    .execute(&mut *conn)
                    .await?;
            }
            E::ChargingStarted(c) => {
                update("UPDATE sessions SET status = 'CHARGING', transaction_id = $3, updated_at = $2 WHERE id = $1")
                    .bind(&c.transaction_id)
                    .execute(&mut *conn)
                    .await?;
            }
            E::ProgressRecorded(p) | E::ChargingStopped(p) => {
                update("UPDATE sessions SET energy_wh = $3, cost_cents = $4, updated_at = $2 WHERE id = $1")
                    .bind(p.energy_wh)
                    .bind(p.cost_cents)
                    .execute(&mut *conn)
                    .await?;
            }
            E::StopRequested(_) => status("STOPPING").execute(&mut *conn).await.map(drop)?,
            E::SettlementComputed(_) => {
                update("UPDATE sessions SET status = 'SETTLING', next_attempt_at = $2, updated_at = $2 WHERE id = $1")
                    .execute(&mut *conn)
                    .await?;
            }
            E::Settled(s) => {
                update("UPDATE sessions SET status = 'COMPLETED', captured_cents = $3, next_attempt_at = $2, updated_at = $2 WHERE id = $1")
                    .bind(s.captured_cents)
                    .execute(&mut *conn)
                    .await?;
            }
            E::SettlementFailed(a) | E::RefundFailed(a) | E::ReceiptFailed(a) => {
                update("UPDATE sessions SET next_attempt_at = $3, updated_at = $2 WHERE id = $1")
                    .bind(a.next_attempt_at)
                    .execute(&mut *conn)
                    .await?;
            }
            E::Canceled(_) => status("CANCELED").execute(&mut *conn).await.map(drop)?,
            E::RefundRequested(a) => {
                update("UPDATE sessions SET refund_pending = $3, next_attempt_at = $2, updated_at = $2 WHERE id = $1")
                    .bind(a.amount)
                    .execute(&mut *conn)
                    .await?;
            }
            E::Refunded(_) => update("UPDATE sessions SET refund_pending = 0, updated_at = $2 WHERE id = $1")
                .execute(&mut *conn)
                .await
                .map(drop)?,
            E::RefundDeadLettered(_) => {
                update("UPDATE sessions SET refund_pending = 0, refund_dead = true, updated_at = $2 WHERE id = $1")
                    .execute(&mut *conn)
                    .await?;
            }
            E::ReceiptSent(_) => update("UPDATE sessions SET receipt_sent = true, updated_at = $2 WHERE id = $1")
                .execute(&mut *conn)
                .await
                .map(drop)?,
        }
        Ok(())
    }
}

/// A session in a list.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// The session's id (its stream is `charge_session-<id>`).
    pub id: Uuid,
    /// ocpp or adhoc.
    pub kind: String,
    /// PREAUTHORIZING, AUTHORIZED, CHARGING, STOPPING, SETTLING, COMPLETED, CANCELED
    /// or FAILED.
    pub status: String,
    /// The company's station id the session runs at.
    pub station_id: i64,
    /// Charge point id: the terminal for OCPP, `adhoc-station-<stationId>` for an
    /// ad-hoc session started without one.
    pub charge_point_id: String,
    /// OCPP connector id on the charger, as given at the start.
    pub connector_id: i64,
    /// Energy, Wh.
    pub energy_wh: i64,
    /// Cost so far, cents.
    pub cost_cents: i64,
    /// Captured, cents.
    pub captured_cents: Option<i64>,
    /// When the session was started, before its pre-authorization (lists sort on it).
    pub started_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Which sessions of a company a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    /// `ocpp` or `adhoc`.
    pub kind: Option<&'a str>,
    /// Only this status.
    pub status: Option<&'a str>,
    /// Only this station.
    pub station: Option<i64>,
    /// Only this customer's (a driver sees only its own).
    pub customer: Option<&'a str>,
}

/// Sessions of a company, newest first.
pub async fn list(
    pool: &PgPool,
    company: Uuid,
    filter: ListFilter<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<SessionSummary>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, status, station_id, charge_point_id, connector_id, energy_wh, cost_cents, captured_cents, started_at, updated_at \
         FROM rm_sessions.sessions WHERE company_id = $1 AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR status = $3) \
         AND ($4::bigint IS NULL OR station_id = $4) AND ($5::timestamptz IS NULL OR (started_at, id) < ($5, $6)) \
         AND ($8::text IS NULL OR customer_id = $8) \
         ORDER BY started_at DESC, id DESC LIMIT $7",
    )
    .bind(company)
    .bind(filter.kind)
    .bind(filter.status)
    .bind(filter.station)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .bind(filter.customer)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionSummary {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                status: r.try_get("status")?,
                station_id: r.try_get("station_id")?,
                charge_point_id: r.try_get("charge_point_id")?,
                connector_id: r.try_get("connector_id")?,
                energy_wh: r.try_get("energy_wh")?,
                cost_cents: r.try_get("cost_cents")?,
                captured_cents: r.try_get("captured_cents")?,
                started_at: r.try_get("started_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// [`SessionQueue`] over the `sessions` (and `payments`) read models.
#[derive(Debug, Clone)]
pub struct ReadModelSessionQueue {
    pool: PgPool,
}

impl ReadModelSessionQueue {
    /// The queue on the read models in `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl SessionQueue for ReadModelSessionQueue {
    async fn due_sessions(&self, query: DueQuery) -> Result<Vec<DueSession>, ReadModelError> {
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, company_id, updated_at FROM rm_sessions.sessions WHERE \
               (next_attempt_at IS NOT NULL AND next_attempt_at <= $1 AND \
                  (status = 'SETTLING' OR refund_pending > 0 OR (status = 'COMPLETED' AND NOT receipt_sent AND $3))) \
               OR (status = 'AUTHORIZED' AND kind = 'ocpp' AND remote_start_at < $2) \
               OR (status = 'AUTHORIZED' AND kind = 'ocpp' AND remote_start_at IS NULL \
                   AND updated_at < $1 - interval '1 second') \
               OR (status = 'CANCELED' AND refund_pending = 0 AND NOT refund_dead \
                   AND updated_at < $1 - interval '5 seconds' AND EXISTS (SELECT 1 FROM rm_payments.intents i \
                   WHERE i.id = payment_intent_id AND i.status = 'requires_capture')) \
             ORDER BY updated_at LIMIT $4",
        )
        .bind(query.now)
        .bind(query.start_deadline)
        .bind(query.receipts)
        .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(crate::read_model_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, company, updated_at)| DueSession { id, company: CompanyId(company), updated_at })
            .collect())
    }
}
