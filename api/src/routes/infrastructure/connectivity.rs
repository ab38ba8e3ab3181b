//! The connectivity test of a mapping: the mapping's adapter tests each charge
//! point with the company's settings, and the outcome is recorded as a
//! `cpms_mapping.tested` event.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use chrono::{DateTime, Utc};
use commands::infrastructure::{
    self as cmd,
    adapter::{TestSettings, TestTarget},
    credentials,
};
use domain::{
    infrastructure::{mapping::RecordTest, ChargePointTest, CpmsMappingEvent, TestOutcome},
    CompanyId,
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    adapter_of, cipher, context,
    mappings::{caught_up, mapping_id},
    BodylessCommand, TAG,
};
use crate::{
    auth::Caller,
    error::ApiError,
    routes::{idempotent, Stored},
    state::AppState,
};

/// One charge point's part of a connectivity test.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargePointResult {
    /// The charge point.
    pub charge_point_id: String,
    /// Connected to the adapter when the test began.
    pub connected: bool,
    /// `ok`, `not_connected`, `rejected`, `timeout` or `error`.
    #[schema(example = "ok")]
    pub result: String,
    /// What went wrong, when the result is not `ok`.
    pub error: Option<String>,
    /// Round trip of the last request, ms (absent when nothing was sent).
    pub latency_ms: Option<i64>,
    /// Requests sent (retries after a timeout count).
    pub attempts: i64,
}

/// The outcome of a connectivity test, also recorded as a `cpms_mapping.tested` event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    /// The mapping.
    pub mapping_id: Uuid,
    /// Its station.
    pub station_id: i64,
    /// The adapter that ran the test.
    pub adapter_type: String,
    /// Whether every charge point passed.
    pub ok: bool,
    /// Timeout of each request, ms (the company's adapter setting).
    pub timeout_ms: i64,
    /// Retries after a timeout (the company's adapter setting).
    pub retries: i64,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub tested_at: DateTime<Utc>,
    /// Per charge point, in the mapping's order.
    pub charge_points: Vec<ChargePointResult>,
}

fn report(mapping_id: Uuid, station_id: i64, test: &RecordTest, ok: bool) -> TestReport {
    let charge_points = test.results.iter().map(|r: &ChargePointTest| ChargePointResult {
        charge_point_id: r.charge_point_id.clone(),
        connected: r.connected,
        result: r.result.as_str().into(),
        error: r.error.clone(),
        latency_ms: r.latency_ms,
        attempts: r.attempts,
    });
    TestReport {
        mapping_id,
        station_id,
        adapter_type: test.adapter_type.as_str().into(),
        ok,
        timeout_ms: test.timeout_ms,
        retries: test.retries,
        started_at: test.started_at,
        tested_at: test.now,
        charge_points: charge_points.collect(),
    }
}

/// Test CPMS connectivity for a station: for each mapped charge point, whether it is connected and answers
/// a request (`ocpp`: TriggerMessage Heartbeat) within the company's adapter timeout. The outcome is recorded.
#[utoipa::path(post, path = "/mappings/{id}/test", tag = TAG,
    params(("id" = Uuid, Path, description = "Mapping id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = TestReport, description = "The test ran (see `ok` for its outcome)"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "The mapping changed during the test"),
        (status = 503, body = crate::error::Problem, description = "The adapter could not run the test")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn test_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    command: BodylessCommand,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = mapping_id(&id)?;
    let BodylessCommand { idempotency_key, fingerprint } = command;
    let ctx = context(&caller, idempotency_key.clone(), fingerprint.clone());
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let company = CompanyId(caller.company_id);
        let mapping = cmd::mapping(&state.store, id).await?;
        let mapping = mapping.live_for(company).ok_or_else(|| ApiError::NotFound("mapping not found".into()))?;
        let kind = mapping.adapter_type;
        let adapter = adapter_of(&state, kind)?;
        let settings = cmd::config(&state.store, company).await?.settings(kind);
        let (credentials, unreadable) = credentials::load(&state.pool, &cipher(&state)?, caller.company_id, kind).await?;
        if !unreadable.is_empty() {
            // Names only: values are never logged.
            tracing::warn!(adapter = %kind, names = ?unreadable, "credentials could not be opened (server secret changed?)");
        }
        let target = TestTarget {
            company_id: caller.company_id,
            mapping_id: id,
            charge_point_ids: mapping.charge_point_ids.clone(),
            actor: caller.actor.clone(),
            correlation_id: ctx.correlation_id,
        };
        let test_settings = TestSettings {
            timeout: std::time::Duration::from_millis(settings.timeout_ms.max(0) as u64),
            retries: u32::try_from(settings.retries).unwrap_or(0),
            credentials,
        };
        let started_at = crate::routes::now(&state);
        let results = adapter.test(&target, &test_settings).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let test = RecordTest {
            company_id: company,
            adapter_type: kind,
            timeout_ms: settings.timeout_ms,
            retries: settings.retries,
            results,
            started_at,
            now: crate::routes::now(&state),
        };
        let executed = cmd::record_test(&state.store, &ctx, id, test.clone()).await?;
        // The verdict as recorded (a repeat of the command recorded nothing now: judge the same way).
        let recorded = executed.events.iter().find_map(|e| match e.decode::<CpmsMappingEvent>() {
            Ok(CpmsMappingEvent::Tested(t)) => Some(t.ok),
            _ => None,
        });
        let ok = recorded.unwrap_or_else(|| test.results.iter().all(|r| r.result == TestOutcome::Ok));
        // Best effort, so adapter health reflects the test at once.
        caught_up(&state, id, &executed).await?;
        Ok(Stored { status: StatusCode::OK, location: None, body: json!(report(id, mapping.station_id, &test, ok)) })
    })
    .await
}
