//! CPMS adapters: the native one over our own OCPP gateway.
//!
//! A connectivity test goes through the same command path as any charger
//! command (an `ocpp_command-<id>` stream, sent by whichever gateway process
//! holds the connection): for each mapped charge point, is it connected, and
//! does it answer `TriggerMessage {requestedMessage: "Heartbeat"}` (the same
//! payload in 1.6 and 2.0.1) within the company's adapter timeout.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use commands::{
    handler::load,
    infrastructure::adapter::{AdapterError, ConnectorQuery, ConnectorStatus, CpmsAdapter, TestSettings, TestTarget},
    ocpp_commands::{self, CommandStatus},
    read_model::ReadModelError,
    CommandError, EventStore, Metadata,
};
use domain::{
    charger::command::{OcppCommandFailed, OcppCommandRequested},
    infrastructure::{mapping::MAX_ERROR_TEXT, AdapterType, ChargePointTest, TestOutcome},
    terminal::{Terminal, TerminalState},
    TerminalId,
};
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;

use crate::ocpp::Gateway;

/// What the OCPP adapter reads from the read models (implemented over the
/// projections by the binary, as the charger directory is).
#[async_trait]
pub trait OcppReadModel: Send + Sync + 'static {
    /// Those of `ids` connected to a gateway now (any process).
    async fn connected(&self, company: Uuid, ids: &[String]) -> Result<BTreeSet<String>, ReadModelError>;
    /// Connector statuses of the company's charge points mapped to `ocpp`.
    async fn connectors(&self, query: &ConnectorQuery) -> Result<Vec<ConnectorStatus>, ReadModelError>;
}

/// The request a connectivity test sends.
pub fn trigger_heartbeat() -> Value {
    json!({"requestedMessage": "Heartbeat"})
}

/// The native adapter: charge points connected to our OCPP gateway.
#[derive(Clone)]
pub struct OcppAdapter {
    store: EventStore,
    gateway: Option<Gateway>,
    read_model: Arc<dyn OcppReadModel>,
}

impl std::fmt::Debug for OcppAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcppAdapter").field("gateway", &self.gateway).finish_non_exhaustive()
    }
}

/// How one request ended.
enum Fate {
    Answered(Value),
    Failed {
        reason: String,
        detail: String,
    },
    /// Never sent before the deadline (no gateway holds the connection); withdrawn.
    NotSent,
}

fn error(message: impl std::fmt::Display) -> AdapterError {
    AdapterError { adapter: AdapterType::Ocpp, message: message.to_string() }
}

fn clip(text: String) -> String {
    if text.chars().count() <= MAX_ERROR_TEXT {
        text
    } else {
        text.chars().take(MAX_ERROR_TEXT - 1).chain(['…']).collect()
    }
}

impl OcppAdapter {
    /// The adapter over the log, this process's gateway (if it runs one) and the read models.
    pub fn new(store: EventStore, gateway: Option<Gateway>, read_model: Arc<dyn OcppReadModel>) -> Self {
        Self { store, gateway, read_model }
    }

    /// Sends one TriggerMessage and waits for its fate.
    async fn trigger(&self, target: &TestTarget, charge_point: &str, timeout: Duration) -> Result<Fate, CommandError> {
        let command_id = Uuid::now_v7();
        let metadata = Metadata {
            company_id: Some(target.company_id),
            correlation_id: target.correlation_id,
            causation_id: None,
            actor: target.actor.clone(),
            command_id: None,
        };
        let request = OcppCommandRequested {
            command_id,
            charge_point_id: charge_point.to_owned(),
            action: "TriggerMessage".into(),
            payload: trigger_heartbeat(),
            deliver_on_reconnect: false,
            timeout_ms: timeout.as_millis() as i64,
            requested_at: Utc::now().trunc_subsecs(6),
        };
        let mut wakeups = self.store.subscribe();
        ocpp_commands::request(&self.store, metadata.clone(), request).await?;
        // The gateway times the answer out itself; this bounds the wait for it to send.
        let deadline = Instant::now() + timeout * 2 + Duration::from_secs(1);
        loop {
            wakeups.mark_unchanged();
            let Some(view) = ocpp_commands::view(&self.store, command_id).await? else {
                return Ok(Fate::NotSent);
            };
            match view.status {
                CommandStatus::Answered(payload) => return Ok(Fate::Answered(payload)),
                CommandStatus::Failed(f) => {
                    let detail = [f.error_code, f.description].into_iter().flatten().collect::<Vec<_>>().join(": ");
                    return Ok(Fate::Failed { reason: f.reason, detail });
                }
                CommandStatus::Pending if Instant::now() >= deadline => {
                    let reason = "not sent in time: no gateway holds the connection";
                    if ocpp_commands::fail(
                        &self.store,
                        command_id,
                        view.version,
                        metadata.clone(),
                        OcppCommandFailed::TIMEOUT,
                        None,
                        Some(reason.into()),
                    )
                    .await?
                    {
                        return Ok(Fate::NotSent);
                    }
                }
                CommandStatus::Sent if Instant::now() >= deadline => {
                    return Ok(Fate::Failed { reason: "timeout".into(), detail: "no answer recorded".into() });
                }
                CommandStatus::Pending | CommandStatus::Sent => {
                    tokio::select! {
                        changed = wakeups.changed() => if changed.is_err() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        },
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
        }
    }

    /// Tests one charge point: not connected, or the fate of its last attempt.
    async fn test_one(
        &self,
        target: &TestTarget,
        settings: &TestSettings,
        charge_point: &str,
        connected: bool,
    ) -> Result<ChargePointTest, CommandError> {
        let mut result = ChargePointTest {
            charge_point_id: charge_point.to_owned(),
            connected,
            result: TestOutcome::NotConnected,
            error: Some(format!("{charge_point} is not connected to the OCPP gateway")),
            latency_ms: None,
            attempts: 0,
        };
        if !connected {
            return Ok(result);
        }
        let timeout_ms = settings.timeout.as_millis();
        loop {
            result.attempts += 1;
            let started = Instant::now();
            let fate = self.trigger(target, charge_point, settings.timeout).await?;
            result.latency_ms = Some(started.elapsed().as_millis() as i64);
            let (outcome, error) = match fate {
                Fate::Answered(payload) => match payload.get("status").and_then(Value::as_str) {
                    Some("Accepted") => (TestOutcome::Ok, None),
                    status => (
                        TestOutcome::Rejected,
                        Some(format!("answered TriggerMessage with status {}", status.unwrap_or("(none)"))),
                    ),
                },
                Fate::Failed { reason, .. } if reason == OcppCommandFailed::TIMEOUT => {
                    (TestOutcome::Timeout, Some(format!("no answer to TriggerMessage within {timeout_ms} ms")))
                }
                Fate::Failed { reason, detail }
                    if reason == OcppCommandFailed::DISCONNECTED || reason == OcppCommandFailed::OFFLINE =>
                {
                    (TestOutcome::NotConnected, Some(format!("disconnected before answering ({detail})")))
                }
                Fate::Failed { reason, detail } => (TestOutcome::Error, Some(format!("{reason}: {detail}"))),
                Fate::NotSent => (
                    TestOutcome::Timeout,
                    Some(format!("not sent within {timeout_ms} ms: no gateway holds the connection")),
                ),
            };
            let retry = outcome == TestOutcome::Timeout && result.attempts <= i64::from(settings.retries);
            result.result = outcome;
            result.error = error.map(|e| match result.attempts {
                1 => clip(e),
                n => clip(format!("{e} (after {n} attempts)")),
            });
            if !retry {
                return Ok(result);
            }
        }
    }
}

#[async_trait]
impl CpmsAdapter for OcppAdapter {
    fn kind(&self) -> AdapterType {
        AdapterType::Ocpp
    }

    async fn foreign_charge_points(&self, company_id: Uuid, ids: &[String]) -> Result<Vec<String>, AdapterError> {
        let mut foreign = Vec::new();
        for raw in ids {
            // The log, not a read model: a terminal registered a moment ago counts.
            let owned = match TerminalId::parse(raw) {
                Ok(id) => match load::<Terminal>(&self.store, &Terminal::stream_id(&id)).await.map_err(error)?.state {
                    TerminalState::Registered(t) => t.company_id().as_uuid() == company_id,
                    TerminalState::Unregistered => false,
                },
                Err(_) => false,
            };
            if !owned {
                foreign.push(raw.clone());
            }
        }
        Ok(foreign)
    }

    async fn connected(&self, company_id: Uuid, ids: &[String]) -> Result<BTreeSet<String>, AdapterError> {
        let mut connected = self.read_model.connected(company_id, ids).await.map_err(error)?;
        if let Some(gateway) = &self.gateway {
            // This process's own connections are known without waiting for the read model.
            connected.extend(ids.iter().filter(|id| gateway.is_connected(id)).cloned());
        }
        Ok(connected)
    }

    async fn test(&self, target: &TestTarget, settings: &TestSettings) -> Result<Vec<ChargePointTest>, AdapterError> {
        let connected = self.connected(target.company_id, &target.charge_point_ids).await?;
        let tests =
            target.charge_point_ids.iter().map(|cp| self.test_one(target, settings, cp, connected.contains(cp)));
        futures::future::join_all(tests).await.into_iter().collect::<Result<_, _>>().map_err(error)
    }

    async fn connectors(&self, query: &ConnectorQuery) -> Result<Vec<ConnectorStatus>, AdapterError> {
        self.read_model.connectors(query).await.map_err(error)
    }
}

#[cfg(test)]
mod tests {
    use domain::terminal::OcppVersion;

    use super::*;

    #[test]
    fn the_test_request_is_valid_in_both_protocol_versions() {
        for version in [OcppVersion::V16, OcppVersion::V201] {
            let checked = crate::ocpp::schema::validate(version, "TriggerMessage", false, &trigger_heartbeat());
            assert!(checked.is_ok(), "{version:?}: {:?}", checked.err().map(|e| e.1));
        }
    }

    #[test]
    fn long_error_texts_are_clipped() {
        assert_eq!(clip("short".into()), "short");
        let clipped = clip("x".repeat(MAX_ERROR_TEXT + 10));
        assert_eq!(clipped.chars().count(), MAX_ERROR_TEXT);
        assert!(clipped.ends_with('…'));
    }
}
