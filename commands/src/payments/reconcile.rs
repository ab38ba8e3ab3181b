//! Learning how an operation in flight ended (retrying captures, voids and
//! refunds with the same idempotency key, looking authorizations up), and
//! gateway webhooks, which are acted on only after asking the gateway again.

use domain::{
    payment::{Operation, Settlement, WebhookReceived},
    wallet::WalletCommand,
    CompanyId, DomainError, Money,
};
use serde_json::Value;
use uuid::Uuid;

use super::{
    port::{Called, ChargeStatus, GatewayError},
    Actor, IntentCommand, IntentState, Payments,
};
use crate::{CommandError, StoreError};

impl Payments {
    /// Sends the capture, void or refund in flight again, with the same
    /// idempotency key (safe: the gateway answers a repeat with the first
    /// result). Authorizations are never re-sent: they are reconciled.
    pub async fn retry_pending(&self, actor: &Actor, id: Uuid) -> Result<IntentState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        state.owned_by(actor.company).ok_or(DomainError::NotFound("payment intent"))?;
        let Some(pending) = state.pending.clone() else { return Ok(state) };
        let charge = state.charge_id.clone().unwrap_or_default();
        let amount = pending.amount.to_cents();
        match pending.operation {
            // Authorizations are reconciled by look-up, never re-sent.
            Operation::Authorize => Ok(state),
            Operation::Capture if state.already_collected => {
                // PIX: the capture is the refund of the rest, sent with the capture's key.
                let rest = Money::from_decimal(state.capturable.amount() - pending.amount.amount());
                let called = self.gateway.cancel(&charge, rest.to_cents(), &pending.idempotency_key).await;
                self.settle_call(actor, id, Operation::Capture, called, |_| Settlement::Captured {
                    amount: pending.amount,
                    refunded: rest,
                })
                .await
            }
            Operation::Capture => {
                let called = self.gateway.capture(&charge, amount.unwrap_or_default(), &pending.idempotency_key).await;
                self.settle_call(actor, id, Operation::Capture, called, |_| Settlement::Captured {
                    amount: pending.amount,
                    refunded: Money::default(),
                })
                .await
            }
            Operation::Void => {
                let called = self.gateway.cancel(&charge, None, &pending.idempotency_key).await;
                self.settle_call(actor, id, Operation::Void, called, |_| Settlement::Voided).await
            }
            Operation::Refund => {
                let called = self.gateway.cancel(&charge, amount, &pending.idempotency_key).await;
                self.settle_call(actor, id, Operation::Refund, called, |_| Settlement::Refunded {
                    amount: pending.amount,
                })
                .await
            }
        }
    }

    /// Learns from the gateway how an operation in flight ended, without
    /// repeating it. Returns the state after.
    pub async fn reconcile(&self, actor: &Actor, id: Uuid) -> Result<IntentState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        let Some(pending) = state.pending.clone() else { return Ok(state) };
        let created = state.created.clone().ok_or(DomainError::NotFound("payment intent"))?;
        if !created.method.uses_gateway() {
            return Ok(state);
        }
        // A capture, void or refund with an unknown outcome is sent again with
        // the same Idempotency-Key: the gateway answers a repeat with the first
        // result, so this learns the outcome without doing anything twice.
        if pending.operation != Operation::Authorize {
            return self.retry_pending(actor, id).await;
        }
        let snapshot = match &state.charge_id {
            Some(charge) => self.gateway.fetch_charge(charge).await,
            None => {
                let found = self.gateway.find_by_code(&id.to_string()).await;
                match found.result {
                    Ok(Some(s)) => Called { result: Ok(s), exchanges: found.exchanges },
                    Ok(None) if pending.operation == Operation::Authorize => {
                        // The gateway never created the order: the authorization did not happen.
                        let failed = Settlement::Failed {
                            code: "gateway_error".into(),
                            reason: "the gateway has no order for this intent".into(),
                            decline_code: None,
                        };
                        return self
                            .record_and_settle(actor, id, Operation::Authorize, found.exchanges, failed, None)
                            .await;
                    }
                    Ok(None) => Called {
                        result: Err(GatewayError::Unknown("no charge yet".into())),
                        exchanges: found.exchanges,
                    },
                    Err(e) => Called { result: Err(e), exchanges: found.exchanges },
                }
            }
        };
        let asked = pending.amount;
        let exchanges = snapshot.exchanges.clone();
        let Ok(charge) = snapshot.result else {
            // Still unknown: record the look-up, settle nothing.
            return self
                .record_and_settle(
                    actor,
                    id,
                    pending.operation,
                    exchanges,
                    Settlement::Unknown { reason: "still unknown after a look-up".into() },
                    None,
                )
                .await;
        };
        let outcome = match (pending.operation, &charge.status) {
            (Operation::Authorize, ChargeStatus::WaitingPayment) if state.pix.is_some() => {
                if charge.pix.as_ref().is_some_and(|p| p.expires_at < self.now()) {
                    Settlement::Expired
                } else {
                    return Ok(state); // the payer has not paid yet
                }
            }
            (Operation::Authorize, ChargeStatus::Canceled | ChargeStatus::Failed { .. }) if state.pix.is_some() => {
                Settlement::Expired
            }
            (Operation::Authorize, _) => Self::authorization(charge),
            (Operation::Capture, ChargeStatus::Paid) => {
                Settlement::Captured { amount: asked, refunded: Money::default() }
            }
            (Operation::Void, ChargeStatus::Canceled) => Settlement::Voided,
            (Operation::Refund, _) if charge.canceled_amount > 0 => Settlement::Refunded { amount: asked },
            (_, status) => Settlement::Unknown { reason: format!("charge status {status:?}") },
        };
        let credit_customer = created.top_up_wallet.clone();
        let credit = match (&outcome, &credit_customer) {
            (Settlement::Captured { .. }, Some(customer)) => Some((
                customer.as_str(),
                vec![WalletCommand::Credit {
                    company_id: actor.company,
                    customer_id: customer.clone(),
                    amount: asked.to_cents().unwrap_or_default(),
                    source_intent_id: id,
                    at: self.now(),
                }],
            )),
            _ => None,
        };
        let state = self.record_and_settle(actor, id, pending.operation, exchanges, outcome, credit).await?;
        self.after_authorization(actor, id, state).await
    }

    /// Records a gateway webhook about an intent (once per hook id) and acts on
    /// what the gateway says when asked again, never on the webhook body alone.
    pub async fn webhook(
        &self,
        actor: &Actor,
        id: Uuid,
        webhook: WebhookReceived,
    ) -> Result<IntentState, CommandError> {
        let record = IntentCommand::RecordWebhook { company_id: actor.company, webhook };
        self.commit(actor, id, &[record], None).await?;
        self.reconcile(actor, id).await
    }

    /// Finds the intent a gateway charge belongs to (and its company), from the log.
    pub async fn intent_of_charge(&self, charge_id: &str) -> Result<Option<(Uuid, CompanyId)>, StoreError> {
        let row: Option<(String, Value)> = sqlx::query_as(
            "SELECT stream_id, metadata FROM events WHERE event_type IN ('payment_intent.authorized', 'payment_intent.pix_qr_issued') \
             AND payload->>'chargeId' = $1 ORDER BY position LIMIT 1",
        )
        .bind(charge_id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.and_then(|(stream, metadata)| {
            let id = stream.strip_prefix("payment_intent-").and_then(|s| Uuid::parse_str(s).ok())?;
            let company = metadata.get("companyId").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())?;
            Some((id, CompanyId(company)))
        }))
    }
}
