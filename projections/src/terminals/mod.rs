//! The `terminals` read model: one row per terminal and its health reports.

mod queries;

use async_trait::async_trait;
use commands::RecordedEvent;
use domain::terminal::{implied_profile, TerminalEvent};
pub use queries::{get, list, password_hash, stats, ConnectorView, ListFilter, Page, TerminalStats, TerminalView};
use sqlx::PgConnection;

use crate::runtime::{ProjectionError, Projector};

/// Projects `terminal.*` events into `rm_terminals`.
#[derive(Debug, Default)]
pub struct TerminalsProjector;

/// Name of the projector (checkpoint, metrics, rebuild).
pub const NAME: &str = "terminals";

#[async_trait]
impl Projector for TerminalsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> &'static str {
        "rm_terminals"
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if event.category() != "terminal" {
            return Ok(());
        }
        let decoded = event
            .decode::<TerminalEvent>()
            .map_err(|e| ProjectionError::Decode { position: event.position, reason: e.to_string() })?;
        let terminal_id = event.stream_id.split_once('-').map_or("", |(_, id)| id);
        match decoded {
            TerminalEvent::Registered(r) => {
                sqlx::query(
                    "INSERT INTO terminals (id, company_id, station_id, vendor, model, ocpp_version, connectors, \
                     password_hash, security_profile, status, registered_at, updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $12, 'Unavailable', $9, $10, $11)",
                )
                .bind(r.terminal_id.as_str())
                .bind(r.company_id.as_uuid())
                .bind(r.station_id)
                .bind(&r.vendor)
                .bind(&r.model)
                .bind(event.payload.get("ocppVersion").and_then(|v| v.as_str()).unwrap_or_default())
                .bind(serde_json::to_value(&r.connectors).unwrap_or_default())
                .bind(&r.password_hash)
                .bind(r.registered_at)
                .bind(event.recorded_at)
                .bind(event.stream_version)
                .bind(i16::from(implied_profile(r.password_hash.as_deref())))
                .execute(&mut *conn)
                .await?;
            }
            TerminalEvent::CredentialsSet(c) => {
                sqlx::query(
                    "UPDATE terminals SET password_hash = $2, security_profile = $3, updated_at = $4, version = $5 \
                     WHERE id = $1",
                )
                .bind(terminal_id)
                .bind(&c.password_hash)
                .bind(i16::from(c.security_profile))
                .bind(event.recorded_at)
                .bind(event.stream_version)
                .execute(&mut *conn)
                .await?;
            }
            TerminalEvent::HealthReported(h) => {
                sqlx::query(
                    "INSERT INTO health_events (event_id, company_id, terminal_id, kind, severity, code, message, occurred_at, reported_at) \
                     SELECT $1, company_id, id, $3, $4, $5, $6, $7, $8 FROM terminals WHERE id = $2",
                )
                .bind(event.event_id)
                .bind(terminal_id)
                .bind(json_str(&event.payload, "kind"))
                .bind(json_str(&event.payload, "severity"))
                .bind(&h.code)
                .bind(&h.message)
                .bind(h.occurred_at)
                .bind(h.reported_at)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "UPDATE terminals SET last_seen_at = GREATEST(last_seen_at, $2), updated_at = $3, version = $4 WHERE id = $1",
                )
                .bind(terminal_id)
                .bind(h.occurred_at)
                .bind(event.recorded_at)
                .bind(event.stream_version)
                .execute(&mut *conn)
                .await?;
            }
            TerminalEvent::StatusChanged(s) => {
                sqlx::query(
                    "UPDATE terminals SET status = $2, status_reason = $3, updated_at = $4, version = $5 WHERE id = $1",
                )
                .bind(terminal_id)
                .bind(s.to.as_str())
                .bind(&s.reason)
                .bind(event.recorded_at)
                .bind(event.stream_version)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }
}

fn json_str<'a>(payload: &'a serde_json::Value, key: &str) -> &'a str {
    payload.get(key).and_then(|v| v.as_str()).unwrap_or_default()
}
