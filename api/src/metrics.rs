//! Prometheus metrics: HTTP traffic by route and status, events appended,
//! projector lag and the charge-session queues (computed at scrape time).

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::state::AppState;

/// The registry and the instruments.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    /// Events appended by this process, by stream category.
    pub events_appended: IntCounterVec,
    /// Projector lag in events.
    pub projector_lag: IntGaugeVec,
    /// Projector checkpoint position.
    pub projector_checkpoint: IntGaugeVec,
    /// Last readable global position of the log.
    pub log_head: prometheus::IntGauge,
    /// Charge-session queue items by queue and state (computed at scrape time).
    pub session_queue: IntGaugeVec,
    /// Events the Kafka relay has still to publish (when Kafka is configured).
    pub relay_lag: prometheus::IntGauge,
    /// The Kafka relay's checkpoint position.
    pub relay_checkpoint: prometheus::IntGauge,
    /// Prepared (two-phase) transactions, in this database or others.
    pub prepared_xacts: IntGaugeVec,
    /// Age in seconds of the oldest prepared transaction, in this database or others.
    pub prepared_xact_oldest_age: IntGaugeVec,
    /// 1 when the Kafka relay stopped at an event it cannot publish.
    pub relay_stopped: prometheus::IntGauge,
    /// The position of that event (0 while the relay runs).
    pub relay_stopped_position: prometheus::IntGauge,
    /// Producers the relay of this process replaced after a fatal librdkafka error.
    pub relay_producer_recreations: prometheus::IntCounter,
}

impl Metrics {
    /// Registers every instrument.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("chargeledger".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by method, route and status")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["method", "route", "status"],
        )?;
        let events_appended =
            IntCounterVec::new(Opts::new("events_appended_total", "Events appended by this process"), &["category"])?;
        let projector_lag = IntGaugeVec::new(
            Opts::new("projector_lag_events", "Events in the log not yet applied by the projector"),
            &["projector"],
        )?;
        let projector_checkpoint = IntGaugeVec::new(
            Opts::new("projector_checkpoint_position", "Last global position applied by the projector"),
            &["projector"],
        )?;
        let log_head =
            prometheus::IntGauge::new("log_head_position", "Last readable global position of the event log")?;
        let session_queue = IntGaugeVec::new(
            Opts::new(
                "session_queue_items",
                "Charge-session queue items: settlement, refund and receipt; pending or dead_lettered",
            ),
            &["queue", "state"],
        )?;
        registry.register(Box::new(session_queue.clone()))?;
        let relay_lag =
            prometheus::IntGauge::new("relay_lag_events", "Events in the log the Kafka relay has not published")?;
        let relay_checkpoint =
            prometheus::IntGauge::new("relay_checkpoint_position", "Last global position the Kafka relay published")?;
        let prepared_xacts = IntGaugeVec::new(
            Opts::new(
                "pg_prepared_xacts",
                "Prepared transactions; scope this_database holds every log reader back until resolved",
            ),
            &["scope"],
        )?;
        let prepared_xact_oldest_age = IntGaugeVec::new(
            Opts::new("pg_prepared_xact_oldest_age_seconds", "Age of the oldest prepared transaction (0 when none)"),
            &["scope"],
        )?;
        registry.register(Box::new(prepared_xacts.clone()))?;
        registry.register(Box::new(prepared_xact_oldest_age.clone()))?;
        let relay_stopped = prometheus::IntGauge::new(
            "relay_stopped",
            "1 when the Kafka relay stopped at an event it cannot publish (see /health/detailed)",
        )?;
        let relay_stopped_position = prometheus::IntGauge::new(
            "relay_stopped_position",
            "Global position of the event the stopped Kafka relay cannot publish (0 while it runs)",
        )?;
        let relay_producer_recreations = prometheus::IntCounter::new(
            "relay_producer_recreations_total",
            "Kafka producers the relay of this process replaced after a fatal librdkafka error",
        )?;
        registry.register(Box::new(relay_stopped.clone()))?;
        registry.register(Box::new(relay_stopped_position.clone()))?;
        registry.register(Box::new(relay_producer_recreations.clone()))?;
        registry.register(Box::new(relay_lag.clone()))?;
        registry.register(Box::new(relay_checkpoint.clone()))?;
        registry.register(Box::new(log_head.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(events_appended.clone()))?;
        registry.register(Box::new(projector_lag.clone()))?;
        registry.register(Box::new(projector_checkpoint.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_latency,
            events_appended,
            projector_lag,
            projector_checkpoint,
            log_head,
            session_queue,
            relay_lag,
            relay_checkpoint,
            prepared_xacts,
            prepared_xact_oldest_age,
            relay_stopped,
            relay_stopped_position,
            relay_producer_recreations,
        })
    }

    /// Counts appended events.
    pub fn appended(&self, events: &[commands::RecordedEvent]) {
        for e in events {
            self.events_appended.with_label_values(&[e.category()]).inc();
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(%error, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Middleware recording every request under its route template (never the raw
/// path, which would let callers blow up the label set).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    state.metrics.http_requests.with_label_values(&labels).inc();
    state.metrics.http_latency.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
    response
}
