//! The `infrastructure` read model: station-CPMS mappings, their charge points
//! with the last connectivity test of each, and adapter settings (credential
//! names only: values never leave `cpms_credentials`).

mod queries;

use async_trait::async_trait;
use commands::RecordedEvent;
use domain::infrastructure::{CpmsConfigEvent, CpmsMappingEvent, MappingTested, TestOutcome};
use sqlx::PgConnection;
use uuid::Uuid;

pub use queries::{
    adapter_configs, adapter_summaries, connected_charge_points, get_mapping, list_mappings, mapped_charge_points,
    ocpp_connectors, AdapterConfigView, AdapterSummary, LastTestView, MappedChargePoint, MappingView,
};

use crate::runtime::{ProjectionError, Projector};

/// Name of the projector.
pub const NAME: &str = "infrastructure";

/// Longest summary of a failed test kept on the mapping.
const MAX_ERROR_SUMMARY: usize = 500;

/// Projects `cpms_mapping.*` and `cpms_config.*` into `rm_infrastructure`.
#[derive(Debug, Default)]
pub struct InfrastructureProjector;

#[async_trait]
impl Projector for InfrastructureProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> &'static str {
        "rm_infrastructure"
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let decode_error =
            |e: domain::EventDecodeError| ProjectionError::Decode { position: event.position, reason: e.to_string() };
        match event.category() {
            "cpms_mapping" => {
                let id =
                    event.stream_id.split_once('-').and_then(|(_, id)| Uuid::parse_str(id).ok()).unwrap_or_default();
                apply_mapping(conn, event, id, event.decode::<CpmsMappingEvent>().map_err(decode_error)?).await
            }
            "cpms_config" => {
                let CpmsConfigEvent::AdapterConfigured(c) = event.decode::<CpmsConfigEvent>().map_err(decode_error)?;
                let company = event.company_id().unwrap_or_default();
                let current: Option<serde_json::Value> = sqlx::query_scalar(
                    "SELECT credential_names FROM adapter_configs WHERE company_id = $1 AND adapter_type = $2",
                )
                .bind(company)
                .bind(c.adapter_type.as_str())
                .fetch_optional(&mut *conn)
                .await?;
                let mut names: Vec<String> = current.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
                names.extend(c.credentials_set.iter().cloned());
                names.retain(|n| !c.credentials_removed.contains(n));
                names.sort();
                names.dedup();
                sqlx::query(
                    "INSERT INTO adapter_configs (company_id, adapter_type, timeout_ms, retries, credential_names, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (company_id, adapter_type) DO UPDATE \
                     SET timeout_ms = $3, retries = $4, credential_names = $5, updated_at = $6",
                )
                .bind(company)
                .bind(c.adapter_type.as_str())
                .bind(c.timeout_ms)
                .bind(c.retries)
                .bind(serde_json::json!(names))
                .bind(c.configured_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

async fn apply_mapping(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    id: Uuid,
    decoded: CpmsMappingEvent,
) -> Result<(), ProjectionError> {
    match decoded {
        CpmsMappingEvent::Created(c) => {
            sqlx::query(
                "INSERT INTO mappings (id, company_id, station_id, adapter_type, charge_point_ids, created_at, updated_at, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
            )
            .bind(id)
            .bind(c.company_id.as_uuid())
            .bind(c.station_id)
            .bind(c.adapter_type.as_str())
            .bind(serde_json::json!(c.charge_point_ids))
            .bind(c.created_at)
            .bind(event.stream_version)
            .execute(&mut *conn)
            .await?;
            put_charge_points(conn, id, &c.charge_point_ids).await?;
        }
        CpmsMappingEvent::Updated(u) => {
            sqlx::query(
                "UPDATE mappings SET adapter_type = $2, charge_point_ids = $3, updated_at = $4, version = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(u.adapter_type.as_str())
            .bind(serde_json::json!(u.charge_point_ids))
            .bind(u.updated_at)
            .bind(event.stream_version)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM charge_points WHERE mapping_id = $1 AND NOT (charge_point_id = ANY($2))")
                .bind(id)
                .bind(&u.charge_point_ids)
                .execute(&mut *conn)
                .await?;
            put_charge_points(conn, id, &u.charge_point_ids).await?;
        }
        CpmsMappingEvent::Deleted(d) => {
            sqlx::query(
                "UPDATE mappings SET deleted = true, deleted_at = $2, updated_at = $2, version = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(d.deleted_at)
            .bind(event.stream_version)
            .execute(&mut *conn)
            .await?;
        }
        CpmsMappingEvent::Tested(t) => apply_test(conn, event, id, &t).await?,
    }
    Ok(())
}

/// Inserts the mapping's charge points (keeping the last test of those it already had).
async fn put_charge_points(conn: &mut PgConnection, id: Uuid, charge_points: &[String]) -> Result<(), sqlx::Error> {
    for (position, cp) in charge_points.iter().enumerate() {
        sqlx::query(
            "INSERT INTO charge_points (mapping_id, charge_point_id, company_id, position) \
             SELECT id, $2, company_id, $3 FROM mappings WHERE id = $1 \
             ON CONFLICT (mapping_id, charge_point_id) DO UPDATE SET position = $3",
        )
        .bind(id)
        .bind(cp)
        .bind(position as i32)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn apply_test(
    conn: &mut PgConnection,
    event: &RecordedEvent,
    id: Uuid,
    t: &MappingTested,
) -> Result<(), sqlx::Error> {
    let failures: Vec<String> = t
        .results
        .iter()
        .filter(|r| r.result != TestOutcome::Ok)
        .map(|r| match &r.error {
            Some(error) => format!("{}: {} ({error})", r.charge_point_id, r.result.as_str()),
            None => format!("{}: {}", r.charge_point_id, r.result.as_str()),
        })
        .collect();
    let summary =
        (!failures.is_empty()).then(|| failures.join("; ").chars().take(MAX_ERROR_SUMMARY).collect::<String>());
    sqlx::query(
        "UPDATE mappings SET last_test_at = $2, last_test_ok = $3, last_test_error = $4, \
         last_success_at = CASE WHEN $3 THEN $2 ELSE last_success_at END, version = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(t.tested_at)
    .bind(t.ok)
    .bind(summary)
    .bind(event.stream_version)
    .execute(&mut *conn)
    .await?;
    for r in &t.results {
        sqlx::query(
            "UPDATE charge_points SET last_result = $3, last_error = $4, last_latency_ms = $5, last_tested_at = $6, \
             last_success_at = CASE WHEN $3 = 'ok' THEN $6 ELSE last_success_at END \
             WHERE mapping_id = $1 AND charge_point_id = $2",
        )
        .bind(id)
        .bind(&r.charge_point_id)
        .bind(r.result.as_str())
        .bind(&r.error)
        .bind(r.latency_ms)
        .bind(t.tested_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
