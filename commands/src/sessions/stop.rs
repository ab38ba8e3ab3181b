//! Stopping: a stop request (with the remote stop while charging), the budget
//! stop when progress uses the pre-authorization up, orphan transactions, and
//! releasing the payment of a canceled session.

use chrono::{DateTime, Utc};
use domain::{
    payment::IntentStatus,
    session::{ChargeSession, Reason, SessionCommand, SessionKind, SessionState, SessionStatus},
    Aggregate,
};
use uuid::Uuid;

use super::{remote_stop, stop_call_while_charging, ChargerCall, Sessions};
use crate::{
    decision::{self, Stream},
    payments::Actor,
    CommandError,
};

impl Sessions {
    /// Asks a charger for something outside any session transition (stopping
    /// a transaction that belongs to no live session).
    pub(super) async fn request_command(&self, actor: &Actor, call: &ChargerCall) -> Result<(), CommandError> {
        let command_id = Uuid::now_v7();
        let stream = domain::charger::command::command_stream_id(command_id);
        decision::run(
            &self.store,
            &actor.context(None),
            "ocpp_command.request",
            vec![Stream::new_record(&stream)],
            |d| d.record(&stream, &[self.command_request(command_id, call)]),
            |_: &()| serde_json::Value::Null,
        )
        .await?;
        Ok(())
    }

    /// Stops a session: remote stop while charging, void before, the current
    /// state when already stopped. The stop request and the remote stop are
    /// appended together.
    pub async fn stop(&self, actor: &Actor, id: Uuid, code: &str, detail: &str) -> Result<SessionState, CommandError> {
        let current = self.get(actor.company, id).await?;
        let protocol = match &current.started {
            Some(s) if s.kind == SessionKind::Ocpp => Some(self.protocol_of(&s.charge_point_id).await?),
            _ => None,
        };
        let reason = Reason { code: code.into(), detail: detail.into(), at: self.now() };
        let t = self
            .transition(
                actor,
                id,
                |_| vec![SessionCommand::RequestStop(reason.clone())],
                |before| stop_call_while_charging(protocol, before),
            )
            .await?;
        if matches!(t.before.status, SessionStatus::Preauthorizing | SessionStatus::Authorized)
            && t.after.status == SessionStatus::Canceled
        {
            self.release_payment(actor, &t.after).await?;
        }
        Ok(t.after)
    }

    /// Records charging progress reported by the charger; when the budget is
    /// used up the stop and the remote stop are appended together.
    pub(crate) async fn record_progress(
        &self,
        actor: &Actor,
        id: Uuid,
        energy_wh: i64,
        at: DateTime<Utc>,
    ) -> Result<SessionState, CommandError> {
        let (current, _, _) = self.load(id).await?;
        let protocol = match &current.started {
            Some(s) if s.kind == SessionKind::Ocpp => Some(self.protocol_of(&s.charge_point_id).await?),
            _ => None,
        };
        let t = self
            .transition(
                actor,
                id,
                |_| vec![SessionCommand::Progress { energy_wh, at }],
                |before| {
                    // Only when this progress is what exhausts the budget.
                    let after = ChargeSession::decide(before, SessionCommand::Progress { energy_wh, at })
                        .ok()?
                        .iter()
                        .fold(before.clone(), ChargeSession::evolve);
                    (after.status == SessionStatus::Stopping).then_some(())?;
                    stop_call_while_charging(protocol, before)
                },
            )
            .await?;
        Ok(t.after)
    }

    /// Stops a charger transaction that belongs to a canceled session.
    pub(crate) async fn stop_orphan(
        &self,
        actor: &Actor,
        charge_point_id: &str,
        transaction_id: &str,
    ) -> Result<(), CommandError> {
        let protocol = self.protocol_of(charge_point_id).await?;
        self.request_command(actor, &remote_stop(protocol, charge_point_id, transaction_id)).await
    }

    /// Voids the payment of a canceled session (or queues a refund when the
    /// money was already collected, as with PIX).
    pub(super) async fn release_payment(&self, actor: &Actor, state: &SessionState) -> Result<(), CommandError> {
        let Some(started) = &state.started else { return Ok(()) };
        let intent = self.payments.get(actor.company, started.payment_intent_id).await?;
        match intent.status() {
            IntentStatus::RequiresAuthorization | IntentStatus::RequiresCapture | IntentStatus::Processing
                if !intent.already_collected =>
            {
                if let Err(error) = self.payments.void(actor, started.payment_intent_id).await {
                    // Another path's void (or the reconciler's) in flight owns it;
                    // a hold the gateway refused to release is retried by the refund queue.
                    let now_intent = self.payments.get(actor.company, started.payment_intent_id).await?;
                    if now_intent.status() == IntentStatus::RequiresCapture {
                        tracing::warn!(%error, session = %started.session_id, "void failed; queued as a refund");
                        self.queue_refund(
                            actor,
                            started.session_id,
                            now_intent.capturable.to_cents().unwrap_or_default(),
                            "void failed",
                        )
                        .await?;
                    }
                }
            }
            IntentStatus::RequiresCapture => {
                // Collected already (PIX): the refund queue returns it, with retries.
                let amount = intent.capturable.to_cents().unwrap_or_default();
                self.queue_refund(actor, started.session_id, amount, "collected before the session was canceled")
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
