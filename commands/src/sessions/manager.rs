//! The session manager: reacts, in log order and from a checkpoint, to what
//! chargers, commands and payments do, and works the queues whose attempts are
//! due. Every reaction is decided on the session's current state, so handling
//! an event twice (after a crash before the checkpoint moved) changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{
    charger::{command::OcppCommandEvent, ChargerEvent},
    payment::PaymentIntentEvent,
    session::{ChargingStarted, Reason, SessionCommand, SessionStatus},
    CompanyId,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    due::{DueQuery, DueSession},
    lookup, Sessions,
};
use crate::{payments::Actor, store::RecordedEvent, CommandError};

/// Checkpoint name (in `projector_checkpoints`).
pub const CHECKPOINT: &str = "session-manager";

fn actor(company: CompanyId) -> Actor {
    Actor { company, actor: "system:session-manager".into(), correlation: Uuid::now_v7() }
}

/// The company and charge point of an event on a `charger-<id>` stream.
fn charger_of(event: &RecordedEvent) -> Option<(CompanyId, &str)> {
    Some((CompanyId(event.company_id()?), event.stream_id.strip_prefix("charger-")?))
}

impl Sessions {
    /// Reacts to one event.
    async fn react(&self, event: &RecordedEvent) -> Result<(), CommandError> {
        let store = &self.store;
        match event.event_type.as_str() {
            "payment_intent.authorized" | "payment_intent.operation_failed" | "payment_intent.expired" => {
                let Some(intent) = event.stream_id.strip_prefix("payment_intent-") else { return Ok(()) };
                let Some(company) = event.company_id().map(CompanyId) else { return Ok(()) };
                let Some(id) = lookup::session_of_intent(store, company, intent).await? else { return Ok(()) };
                if let PaymentIntentEvent::OperationFailed(f) = event.decode::<PaymentIntentEvent>()? {
                    if f.operation != domain::payment::Operation::Authorize {
                        return Ok(());
                    }
                }
                let intent = self.payments.get(company, Uuid::parse_str(intent).unwrap_or_default()).await?;
                self.on_payment(&actor(company), id, &intent, None).await?;
            }
            "ocpp_command.answered" | "ocpp_command.failed" => {
                let Some(command) = event.stream_id.strip_prefix("ocpp_command-") else { return Ok(()) };
                let Some(company) = event.company_id().map(CompanyId) else { return Ok(()) };
                let Some(id) = lookup::session_of_command(store, company, command).await? else { return Ok(()) };
                let refused = match event.decode::<OcppCommandEvent>()? {
                    OcppCommandEvent::Answered(a) => {
                        let status = a.response.get("status").and_then(Value::as_str).unwrap_or_default().to_owned();
                        (status != "Accepted").then(|| format!("the charger answered {status}"))
                    }
                    OcppCommandEvent::Failed(f) => Some(format!("the remote start failed: {}", f.reason)),
                    _ => None,
                };
                if let Some(detail) = refused {
                    self.cancel(company, id, "remote_start_rejected", &detail).await?;
                }
            }
            "charger.transaction_started" => {
                let ChargerEvent::TransactionStarted(tx) = event.decode::<ChargerEvent>()? else { return Ok(()) };
                let Some(tag) = &tx.id_tag else { return Ok(()) };
                let Some((company, charge_point)) = charger_of(event) else { return Ok(()) };
                let Some(id) =
                    lookup::session_awaiting_start(store, company, charge_point, tag, event.position).await?
                else {
                    return Ok(());
                };
                let (state, _, _) = self.load(id).await?;
                let Some(session) = &state.started else { return Ok(()) };
                // 2.0.1 names the EVSE (our `connectorId` is sent as `evseId`), 1.6 the connector.
                if tx.evse_id.or(tx.connector_id).is_some_and(|c| c != session.connector_id) {
                    tracing::warn!(session = %id, transaction = %tx.transaction_id,
                        "a charger started a session's id tag on another connector; not linked");
                    return Ok(());
                }
                let started = ChargingStarted {
                    transaction_id: tx.transaction_id,
                    meter_start_wh: tx.meter_start_wh.unwrap_or(0),
                    at: tx.started_at,
                };
                let tx_id = started.transaction_id.clone();
                let after = self.apply(&actor(company), id, &[SessionCommand::ChargingStarted(started)]).await?;
                if after.status == SessionStatus::Canceled {
                    // Too late: the session was given up and its payment released;
                    // stop the charger rather than let it charge for free.
                    tracing::warn!(session = %id, transaction = %tx_id, "a charger started a canceled session; stopping it");
                    self.stop_orphan(
                        &actor(company),
                        &after.started.as_ref().map(|s| s.charge_point_id.clone()).unwrap_or_default(),
                        &tx_id,
                    )
                    .await?;
                }
            }
            "charger.meter_values_recorded" | "charger.transaction_ended" => {
                let decoded = event.decode::<ChargerEvent>()?;
                let tx_id = match &decoded {
                    ChargerEvent::MeterValuesRecorded(m) => m.transaction_id.clone(),
                    ChargerEvent::TransactionEnded(t) => Some(t.transaction_id.clone()),
                    _ => None,
                };
                let Some(tx_id) = tx_id else { return Ok(()) };
                let Some((company, charge_point)) = charger_of(event) else { return Ok(()) };
                let Some(id) = lookup::session_of_transaction(store, company, charge_point, &tx_id).await? else {
                    return Ok(());
                };
                let (state, _, _) = self.load(id).await?;
                if state.started.as_ref().is_none_or(|s| s.charge_point_id != charge_point) {
                    return Ok(());
                }
                let meter_start = self.meter_start(id).await?;
                let a = actor(company);
                match decoded {
                    ChargerEvent::MeterValuesRecorded(m) => {
                        let Some(last) = m.samples.iter().rev().find_map(|s| s.energy_wh.map(|e| (e, s.timestamp)))
                        else {
                            return Ok(());
                        };
                        self.record_progress(&a, id, (last.0 - meter_start).max(0), last.1).await?;
                    }
                    ChargerEvent::TransactionEnded(t) => {
                        let energy = t
                            .meter_stop_wh
                            .map(|stop| stop - meter_start)
                            .or(t.energy_wh)
                            .unwrap_or(state.energy_wh)
                            .max(0);
                        self.apply(&a, id, &[SessionCommand::ChargingStopped { energy_wh: energy, at: t.stopped_at }])
                            .await?;
                        self.settle(&a, id).await?;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn meter_start(&self, id: Uuid) -> Result<i64, CommandError> {
        let events = self.store.read_stream(&domain::session::ChargeSession::stream_id(id)).await?;
        Ok(events
            .iter()
            .filter_map(|e| e.decode::<domain::session::SessionEvent>().ok())
            .find_map(|e| match e {
                domain::session::SessionEvent::ChargingStarted(c) => Some(c.meter_start_wh),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// Gives a session up before charging and releases its payment.
    async fn cancel(&self, company: CompanyId, id: Uuid, code: &str, detail: &str) -> Result<(), CommandError> {
        let a = actor(company);
        let reason = Reason { code: code.into(), detail: detail.into(), at: self.now() };
        let state = self.apply(&a, id, &[SessionCommand::Cancel(reason)]).await?;
        if state.status == SessionStatus::Canceled {
            self.release_payment(&a, &state).await?;
        }
        Ok(())
    }

    /// Reacts to everything readable after the checkpoint. Returns how many events.
    pub async fn react_all(&self) -> Result<usize, CommandError> {
        let mut from = self.store.checkpoint(CHECKPOINT).await?;
        let mut total = 0;
        loop {
            let events = self.store.read_all(from, 500).await?;
            let Some(last) = events.last().map(|e| e.position) else { return Ok(total) };
            for event in &events {
                self.react(event).await?;
                total += 1;
            }
            self.store.advance_checkpoint(CHECKPOINT, last).await?;
            from = last;
        }
    }

    /// Works the queue items that are due.
    pub async fn sweep(&self) -> Result<usize, CommandError> {
        let now = self.now();
        let deadline = chrono::Duration::from_std(self.config.start_timeout)
            .ok()
            .and_then(|timeout| now.checked_sub_signed(timeout))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        // CANCELED with the payment still held (see below), and
        // AUTHORIZED without a remote start a second after: the process died
        // between the authorization and the remote start (the transition that
        // sends it is atomic, so sending here cannot send twice).
        let query = DueQuery { now, start_deadline: deadline, receipts: self.mailer.is_some(), limit: 100 };
        let due = self.queue.due_sessions(query).await?;
        for DueSession { id, company, updated_at } in &due {
            let company = *company;
            let a = actor(company);
            let (state, _, _) = self.load(*id).await?;
            let result = match state.status {
                SessionStatus::Settling => self.settle(&a, *id).await.map(drop),
                SessionStatus::Authorized if state.remote_start.as_ref().is_some_and(|r| r.at < deadline) => {
                    self.cancel(company, *id, "start_timeout", "the charger did not start in time").await
                }
                SessionStatus::Authorized if state.remote_start.is_none() && *updated_at < deadline => {
                    self.cancel(company, *id, "start_timeout", "the charger was never asked to start in time").await
                }
                SessionStatus::Authorized if state.remote_start.is_none() => {
                    self.send_remote_start(&a, *id, &state, None).await.map(drop)
                }
                _ if state.refund_pending > 0 => self.attempt_refund(&a, *id).await.map(drop),
                // Canceled, and the hold is still there five seconds later: the
                // process died between the cancel and the void.
                SessionStatus::Canceled if !state.refund_dead => self.release_payment(&a, &state).await,
                SessionStatus::Completed if state.receipt.is_none() => self.send_receipt(&a, *id).await.map(drop),
                _ => Ok(()),
            };
            if let Err(error) = result {
                tracing::warn!(session = %id, %error, "queued session work failed; it stays due");
            }
        }
        Ok(due.len())
    }

    /// Runs the manager until shutdown.
    pub async fn run(self, shutdown: CancellationToken, tick: Duration) {
        let mut wakeups = self.store.subscribe();
        loop {
            wakeups.mark_unchanged();
            if let Err(error) = self.react_all().await {
                tracing::error!(%error, "session manager failed; retrying");
            }
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "session sweep failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wakeups.changed() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }
}
