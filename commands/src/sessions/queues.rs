//! The session's queues, worked from its own events: settlement (capture or
//! void of the computed cost), refunds, and the receipt, each with attempts
//! on the retry schedule.

use chrono::{DateTime, Utc};
use domain::{
    payment::IntentStatus,
    session::{Amount, Attempt, ChargeSession, ReceiptSent, SessionCommand, SessionState, SessionStatus, Settled},
    DomainError, Money,
};
use rand::Rng;
use uuid::Uuid;

use super::{receipt, Sessions};
use crate::{payments::Actor, CommandError, StoreError};

impl Sessions {
    pub(super) async fn queue_refund(
        &self,
        actor: &Actor,
        id: Uuid,
        amount: i64,
        reason: &str,
    ) -> Result<SessionState, CommandError> {
        let request = SessionCommand::RequestRefund(Amount { amount, reason: Some(reason.into()), at: self.now() });
        self.apply(actor, id, &[request]).await
    }

    /// An operator's refund of (part of) a completed session's capture.
    pub async fn refund(&self, actor: &Actor, id: Uuid, amount: Option<i64>) -> Result<SessionState, CommandError> {
        let state = self.get(actor.company, id).await?;
        let captured = state.settled.as_ref().map_or(0, |s| s.captured_cents) - state.refunded - state.refund_pending;
        let amount = amount.unwrap_or(captured);
        if state.status != SessionStatus::Completed || amount <= 0 || amount > captured {
            return Err(DomainError::field(
                "amount",
                format!("must be 1 to {captured} cents of a completed session's capture"),
            )
            .into());
        }
        self.queue_refund(actor, id, amount, "refund requested").await
    }

    pub(super) fn next_attempt(&self, attempt: u32) -> Option<DateTime<Utc>> {
        let delay = self.config.retry_schedule.get(attempt as usize - 1)?;
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        Some(self.now() + chrono::Duration::from_std(delay.mul_f64(jitter)).unwrap_or_default())
    }

    /// Captures the computed cost (or voids when it is zero).
    pub async fn settle(&self, actor: &Actor, id: Uuid) -> Result<SessionState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        let (Some(started), Some(settlement)) = (&state.started, &state.settlement) else { return Ok(state) };
        if state.status != SessionStatus::Settling {
            return Ok(state);
        }
        let intent_id = started.payment_intent_id;
        let mut intent = self.payments.get(actor.company, intent_id).await?;
        // Re-entry after a crash or a retry: finish what the intent shows, do not repeat it.
        if intent.status() == IntentStatus::RequiresCapture {
            let outcome = if settlement.capture_cents > 0 {
                self.payments.capture(actor, intent_id, Some(Money::from_cents(settlement.capture_cents))).await
            } else {
                self.payments.void(actor, intent_id).await
            };
            intent = match outcome {
                Ok(i) => i,
                Err(CommandError::Domain(e)) => {
                    return self.settlement_failed(actor, id, &state, &e.to_string()).await;
                }
                Err(e) => return Err(e),
            };
        } else if intent.status() == IntentStatus::Processing {
            // An earlier capture's outcome is unknown: learn it, never capture twice.
            intent = self.payments.reconcile(actor, intent_id).await?;
        }
        match intent.status() {
            IntentStatus::Succeeded | IntentStatus::Canceled => {
                let captured = intent.captured.to_cents().unwrap_or_default();
                let settled =
                    Settled { captured_cents: captured, released_cents: state.authorized - captured, at: self.now() };
                self.apply(actor, id, &[SessionCommand::Settled(settled)]).await
            }
            other => self.settlement_failed(actor, id, &state, &format!("the payment is {}", other.as_str())).await,
        }
    }

    pub(super) async fn settlement_failed(
        &self,
        actor: &Actor,
        id: Uuid,
        state: &SessionState,
        reason: &str,
    ) -> Result<SessionState, CommandError> {
        let attempt = state.settlement_attempts + 1;
        // Settlement is never abandoned: after the schedule, retry at its longest delay.
        let next = self.next_attempt(attempt).or_else(|| self.next_attempt(self.config.retry_schedule.len() as u32));
        let failed = Attempt { attempt, reason: reason.into(), next_attempt_at: next, at: self.now() };
        self.apply(actor, id, &[SessionCommand::SettlementFailed(failed)]).await
    }

    /// One attempt of the pending refund.
    pub async fn attempt_refund(&self, actor: &Actor, id: Uuid) -> Result<SessionState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        let Some(started) = &state.started else { return Ok(state) };
        if state.refund_pending == 0 {
            return Ok(state);
        }
        let intent_id = started.payment_intent_id;
        let intent = self.payments.get(actor.company, intent_id).await?;
        let result = match (intent.status(), intent.pending.as_ref().map(|p| p.operation)) {
            // A refund already in flight (its outcome unknown): send it again, same key.
            (IntentStatus::Processing, Some(domain::payment::Operation::Refund | domain::payment::Operation::Void)) => {
                self.payments.retry_pending(actor, intent_id).await
            }
            // Held (or collected, as PIX is) and never captured: the void releases or refunds it all.
            (IntentStatus::RequiresCapture, _) => self.payments.void(actor, intent_id).await,
            _ => self.payments.refund(actor, intent_id, Some(Money::from_cents(state.refund_pending))).await,
        };
        let done = match &result {
            Ok(i) => !matches!(i.status(), IntentStatus::Processing),
            Err(_) => false,
        };
        if done {
            return self.apply(actor, id, &[SessionCommand::Refunded { at: self.now() }]).await;
        }
        let reason = match result {
            Ok(i) => format!("the refund's outcome is unknown (payment {})", i.status().as_str()),
            Err(e) => e.to_string(),
        };
        let attempt = state.refund_attempts + 1;
        let failed = Attempt { attempt, reason, next_attempt_at: self.next_attempt(attempt), at: self.now() };
        self.apply(actor, id, &[SessionCommand::RefundFailed(failed)]).await
    }

    /// Sends the receipt of a completed session (once).
    pub async fn send_receipt(&self, actor: &Actor, id: Uuid) -> Result<SessionState, CommandError> {
        let Some(mailer) = &self.mailer else { return Ok(self.load(id).await?.0) };
        // One sender per session across processes: the lock is held until the
        // outcome is appended, and the state is read after taking it.
        let mut lock = self.store.pool().begin().await.map_err(StoreError::Database)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 5))")
            .bind(format!("receipt:{id}"))
            .fetch_one(&mut *lock)
            .await
            .map_err(StoreError::Database)?;
        let (state, _, _) = self.load(id).await?;
        if !locked {
            return Ok(state);
        }
        if state.status != SessionStatus::Completed || state.receipt.is_some() {
            return Ok(state);
        }
        let events = self.store.read_stream(&ChargeSession::stream_id(id)).await?;
        let Some(receipt) = receipt::Receipt::from_history(&events) else { return Ok(state) };
        let message_id = format!("<receipt.{id}@chargeledger>");
        let outcome = match mailer.send(&receipt.to, &receipt.subject(), &receipt.body(), &message_id).await {
            Ok(()) => {
                let sent = ReceiptSent { to: receipt.to.clone(), message_id, at: self.now() };
                self.apply(actor, id, &[SessionCommand::ReceiptSent(sent)]).await
            }
            Err(reason) => {
                let attempt = state.receipt_attempts + 1;
                let next =
                    self.next_attempt(attempt).or_else(|| self.next_attempt(self.config.retry_schedule.len() as u32));
                let failed = Attempt { attempt, reason: reason.to_string(), next_attempt_at: next, at: self.now() };
                self.apply(actor, id, &[SessionCommand::ReceiptFailed(failed)]).await
            }
        };
        lock.rollback().await.map_err(StoreError::Database)?;
        outcome
    }
}
