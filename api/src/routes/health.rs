//! The five health endpoints of seed 002.

use std::time::{Duration, Instant};

use axum::{extract::State, http::header, response::IntoResponse, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{error::ApiError, state::AppState};

/// A simple status.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`.
    pub status: &'static str,
}

/// Status of one projector.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectorHealth {
    /// Projector name.
    pub name: String,
    /// Last applied global position.
    pub checkpoint: i64,
    /// Events in the log not yet applied.
    pub lag_events: i64,
}

/// The Kafka relay's status, checkpoint and lag.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelayHealth {
    /// `kafka_relay`.
    pub name: String,
    /// `running`, or `failed`: stopped at an event it cannot publish (ADR 0011).
    pub status: &'static str,
    /// Last published global position.
    pub checkpoint: i64,
    /// Events in the log not yet published.
    pub lag_events: i64,
    /// When `failed`: the event's position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    /// When `failed`: `event at position P (type T) cannot be published: <why>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Producers the relay of this process replaced after a fatal librdkafka error.
    pub producer_recreations: u64,
}

/// One dependency's status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentHealth {
    /// `up` or `down`.
    pub status: &'static str,
    /// Round-trip time of the check.
    pub latency_ms: Option<u64>,
    /// A generic reason, when down (the cause is in the server's log).
    pub error: Option<String>,
}

/// Detailed health.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetailedHealth {
    /// `ok` when every component is up (and the relay, if any, running), else `degraded`.
    pub status: &'static str,
    /// Build version.
    pub version: &'static str,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Postgres (event log and read models).
    pub postgres: ComponentHealth,
    /// Kafka, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<ComponentHealth>,
    /// The Kafka relay's status, checkpoint and lag, when Kafka is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayHealth>,
    /// Last readable global position of the log.
    pub log_head_position: Option<i64>,
    /// Projectors with their lag.
    pub projectors: Vec<ProjectorHealth>,
}

/// Basic health check: the process answers.
#[utoipa::path(get, path = "/health", tag = "Health", responses((status = 200, body = HealthStatus)))]
pub async fn health() -> Json<HealthStatus> {
    Json(HealthStatus { status: "ok" })
}

/// Liveness probe (K8s): the process is not wedged.
#[utoipa::path(get, path = "/health/live", tag = "Health", responses((status = 200, body = HealthStatus)))]
pub async fn live() -> Json<HealthStatus> {
    Json(HealthStatus { status: "ok" })
}

/// Kafka answers a metadata request (only when configured).
async fn ping_kafka(state: &AppState) -> Option<ComponentHealth> {
    let probe = state.kafka.as_ref()?;
    let started = Instant::now();
    Some(match probe.ping(Duration::from_secs(2)).await {
        Ok(_) => ComponentHealth { status: "up", latency_ms: Some(started.elapsed().as_millis() as u64), error: None },
        Err(error) => {
            // The cause goes to the log only: health pages are often public.
            tracing::warn!(%error, "kafka health check failed");
            ComponentHealth { status: "down", latency_ms: None, error: Some("kafka is unreachable".into()) }
        }
    })
}

/// Where and why the relay stopped, if it did: as the relay of this process
/// reports it, else as a relay elsewhere recorded it in the database (whose
/// log has the reason).
async fn relay_stopped(state: &AppState) -> Result<Option<gateways::kafka::Stopped>, ApiError> {
    if let Some(stopped) = state.relay.as_ref().and_then(|status| status.stopped()) {
        return Ok(Some(stopped));
    }
    let Some(position) = gateways::kafka::stopped_at(&state.store).await.map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let event = state.store.read_all(position - 1, 1).await.map_err(ApiError::internal)?.into_iter().next();
    let event_type = event.filter(|e| e.position == position).map_or_else(|| "unknown".into(), |e| e.event_type);
    Ok(Some(gateways::kafka::Stopped { position, event_type, reason: "the relay's log says why".into() }))
}

/// The relay's status, checkpoint and how many events it has still to publish.
async fn relay_health(state: &AppState) -> Result<Option<RelayHealth>, ApiError> {
    if state.kafka.is_none() {
        return Ok(None);
    }
    let checkpoint = gateways::kafka::checkpoint(&state.store).await.map_err(ApiError::internal)?;
    let lag = state.store.count_after(checkpoint, 1_000_000).await.map_err(ApiError::internal)?;
    let stopped = relay_stopped(state).await?;
    let recreations = state.relay.as_ref().map_or(0, |status| status.producer_recreations());
    let m = &state.metrics;
    m.relay_lag.set(lag);
    m.relay_checkpoint.set(checkpoint);
    m.relay_stopped.set(i64::from(stopped.is_some()));
    m.relay_stopped_position.set(stopped.as_ref().map_or(0, |s| s.position));
    m.relay_producer_recreations.inc_by(recreations.saturating_sub(m.relay_producer_recreations.get()));
    Ok(Some(RelayHealth {
        name: gateways::kafka::CHECKPOINT.into(),
        status: if stopped.is_some() { "failed" } else { "running" },
        checkpoint,
        lag_events: lag,
        stopped_at: stopped.as_ref().map(|s| s.position),
        detail: stopped.as_ref().map(gateways::kafka::Stopped::detail),
        producer_recreations: recreations,
    }))
}

async fn ping(state: &AppState) -> ComponentHealth {
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&state.pool)).await {
        Ok(Ok(_)) => {
            ComponentHealth { status: "up", latency_ms: Some(started.elapsed().as_millis() as u64), error: None }
        }
        Ok(Err(error)) => {
            // The cause (host names, users, database names) goes to the log only.
            tracing::warn!(%error, "postgres health check failed");
            ComponentHealth { status: "down", latency_ms: None, error: Some("postgres is unreachable".into()) }
        }
        Err(_) => {
            ComponentHealth { status: "down", latency_ms: None, error: Some("postgres did not answer in 2 s".into()) }
        }
    }
}

/// Readiness probe (K8s): Postgres answers (and Kafka, when configured); else 503.
#[utoipa::path(get, path = "/health/ready", tag = "Health", responses(
    (status = 200, body = HealthStatus),
    (status = 503, body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<HealthStatus>, ApiError> {
    let pg = ping(&state).await;
    if pg.error.is_some() {
        return Err(ApiError::Unavailable("postgres is unreachable".into()));
    }
    if let Some(ComponentHealth { error: Some(_), .. }) = ping_kafka(&state).await {
        return Err(ApiError::Unavailable("kafka is unreachable".into()));
    }
    // A stopped relay does not make the API unready: requests (charging,
    // payments) are still served and nothing is lost; /health/detailed and
    // /metrics report it (ADR 0011).
    Ok(Json(HealthStatus { status: "ok" }))
}

/// Refreshes the log and projector gauges and returns the projectors' health.
/// Lag is counted in events (positions are sparse, so their difference is not a count).
pub async fn projector_health(state: &AppState) -> Result<Vec<ProjectorHealth>, ApiError> {
    let head = state.store.head_position().await.map_err(ApiError::internal)?;
    state.metrics.log_head.set(head);
    let mut out = Vec::new();
    for projector in projections::all() {
        let checkpoint = projections::runtime::checkpoint(&state.pool, projector.name()).await?;
        let lag = state.store.count_after(checkpoint, 1_000_000).await.map_err(ApiError::internal)?;
        state.metrics.projector_lag.with_label_values(&[projector.name()]).set(lag);
        state.metrics.projector_checkpoint.with_label_values(&[projector.name()]).set(checkpoint);
        out.push(ProjectorHealth { name: projector.name().into(), checkpoint, lag_events: lag });
    }
    Ok(out)
}

/// Refreshes the charge-session queue gauges from the sessions read model
/// (every company: this is the operator's view of the platform).
async fn session_queues(state: &AppState) -> Result<(), sqlx::Error> {
    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'SETTLING'), \
                count(*) FILTER (WHERE refund_pending > 0 AND NOT refund_dead), \
                count(*) FILTER (WHERE refund_dead), \
                count(*) FILTER (WHERE status = 'COMPLETED' AND NOT receipt_sent) \
         FROM rm_sessions.sessions",
    )
    .fetch_one(&state.pool)
    .await?;
    let gauge = |queue: &str, s: &str| state.metrics.session_queue.with_label_values(&[queue, s]);
    gauge("settlement", "pending").set(row.0);
    gauge("refund", "pending").set(row.1);
    gauge("refund", "dead_lettered").set(row.2);
    gauge("receipt", "pending").set(row.3);
    Ok(())
}

/// Refreshes the prepared-transaction gauges: a prepared transaction of this
/// database that has an xid holds every log reader back until it is committed
/// or rolled back (`COMMIT PREPARED` / `ROLLBACK PREPARED`); one of another
/// database does not, but still holds back vacuum cluster-wide.
async fn prepared_transactions(state: &AppState) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT CASE WHEN database = current_database() THEN 'this_database' ELSE 'other_databases' END AS scope,                 count(*), COALESCE(EXTRACT(epoch FROM now() - min(prepared))::bigint, 0)          FROM pg_prepared_xacts GROUP BY 1",
    )
    .fetch_all(&state.pool)
    .await?;
    for scope in ["this_database", "other_databases"] {
        let (count, age) = rows.iter().find(|r| r.0 == scope).map_or((0, 0), |r| (r.1, r.2));
        state.metrics.prepared_xacts.with_label_values(&[scope]).set(count);
        state.metrics.prepared_xact_oldest_age.with_label_values(&[scope]).set(age);
    }
    Ok(())
}

/// Detailed health: per-component status, projector lag and version.
#[utoipa::path(get, path = "/health/detailed", tag = "Health", responses(
    (status = 200, body = DetailedHealth), (status = 503, body = DetailedHealth)))]
pub async fn detailed(State(state): State<AppState>) -> impl IntoResponse {
    let postgres = ping(&state).await;
    let up = postgres.error.is_none();
    let projectors = if up { projector_health(&state).await.unwrap_or_default() } else { vec![] };
    let head = if up { state.store.head_position().await.ok() } else { None };
    let kafka = ping_kafka(&state).await;
    let relay = if up { relay_health(&state).await.ok().flatten() } else { None };
    let kafka_up = kafka.as_ref().is_none_or(|k| k.error.is_none());
    let relay_running = relay.as_ref().is_none_or(|r| r.stopped_at.is_none());
    let body = DetailedHealth {
        kafka,
        relay,
        status: if up && kafka_up && relay_running { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        postgres,
        log_head_position: head,
        projectors,
    };
    let status = if up { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "Health", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(error) = projector_health(&state).await {
        tracing::warn!(%error, "projector lag unavailable for metrics");
    }
    if let Err(error) = relay_health(&state).await {
        tracing::warn!(%error, "relay lag unavailable for metrics");
    }
    if let Err(error) = session_queues(&state).await {
        tracing::warn!(%error, "session queue sizes unavailable for metrics");
    }
    if let Err(error) = prepared_transactions(&state).await {
        tracing::warn!(%error, "prepared transactions unavailable for metrics");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
