//! Capture (all or part of an authorization; the rest released, or refunded
//! for PIX) and void.

use domain::{
    payment::{IntentStatus, Operation, PaymentMethod, Settlement},
    wallet::WalletCommand,
    DomainError, Money,
};
use uuid::Uuid;

use super::{
    port::{ChargeStatus, GatewayError},
    Actor, IntentState, Payments,
};
use crate::CommandError;

impl Payments {
    /// Captures `amount` (all that is capturable by default); the rest is released
    /// (PIX: refunded).
    pub async fn capture(&self, actor: &Actor, id: Uuid, amount: Option<Money>) -> Result<IntentState, CommandError> {
        let (current, _, _) = self.load(id).await?;
        if let Some(created) = current.owned_by(actor.company).filter(|_| {
            current.sponsored || current.created.as_ref().is_some_and(|c| c.method == PaymentMethod::Wallet)
        }) {
            // No gateway: request and settlement in one commit, so no crash leaves it processing.
            let asked = amount.unwrap_or(current.capturable);
            let request = self.request(actor, Operation::Capture, amount);
            let settle = self.settle(
                actor,
                Operation::Capture,
                Settlement::Captured { amount: asked, refunded: Money::default() },
            );
            if current.sponsored {
                return self.commit(actor, id, &[request, settle], None).await;
            }
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let debit =
                WalletCommand::Capture { intent_id: id, amount: asked.to_cents().unwrap_or_default(), at: self.now() };
            return self.commit(actor, id, &[request, settle], Some((&customer, vec![debit]))).await;
        }
        let state = self.commit(actor, id, &[self.request(actor, Operation::Capture, amount)], None).await?;
        let created = state.created.clone().ok_or(DomainError::NotFound("payment intent"))?;
        let pending = state.pending.clone().ok_or(DomainError::InvalidState("no capture in progress".into()))?;
        let asked = pending.amount;
        let credit = |amount: i64| {
            created.top_up_wallet.as_ref().map(|customer| {
                (
                    customer.as_str(),
                    vec![WalletCommand::Credit {
                        company_id: actor.company,
                        customer_id: customer.clone(),
                        amount,
                        source_intent_id: id,
                        at: self.now(),
                    }],
                )
            })
        };
        let captured = |refunded: Money| Settlement::Captured { amount: asked, refunded };
        let asked_cents = asked.to_cents().unwrap_or_default();
        if state.sponsored {
            return self
                .commit(actor, id, &[self.settle(actor, Operation::Capture, captured(Money::default()))], None)
                .await;
        }
        if created.method == PaymentMethod::Wallet {
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let debit = WalletCommand::Capture { intent_id: id, amount: asked_cents, at: self.now() };
            return self
                .commit(
                    actor,
                    id,
                    &[self.settle(actor, Operation::Capture, captured(Money::default()))],
                    Some((&customer, vec![debit])),
                )
                .await;
        }
        let charge = state.charge_id.clone().unwrap_or_default();
        if state.already_collected {
            // PIX: the money is in; keep `asked`, refund the rest.
            let rest = Money::from_decimal(state.capturable.amount() - asked.amount());
            if rest.to_cents().unwrap_or_default() == 0 {
                let settle = self.settle(actor, Operation::Capture, captured(Money::default()));
                return self.commit(actor, id, &[settle], credit(asked_cents)).await;
            }
            let called = self.gateway.cancel(&charge, rest.to_cents(), &pending.idempotency_key).await;
            let exchanges = called.exchanges.clone();
            let outcome = match called.result {
                Ok(_) => captured(rest),
                Err(GatewayError::Unknown(reason)) => Settlement::Unknown { reason },
                Err(e) => {
                    Settlement::Failed { code: "refund_failed".into(), reason: e.to_string(), decline_code: None }
                }
            };
            return self
                .record_and_settle(actor, id, Operation::Capture, exchanges, outcome, credit(asked_cents))
                .await;
        }
        let called = self.gateway.capture(&charge, asked_cents, &pending.idempotency_key).await;
        let exchanges = called.exchanges.clone();
        let outcome = match called.result {
            Ok(snapshot) if snapshot.status == ChargeStatus::Paid => captured(Money::default()),
            Ok(snapshot) => {
                Settlement::Unknown { reason: format!("capture answered with charge status {:?}", snapshot.status) }
            }
            Err(GatewayError::Unknown(reason)) => Settlement::Unknown { reason },
            Err(e) => Settlement::Failed { code: "capture_failed".into(), reason: e.to_string(), decline_code: None },
        };
        let credit = if matches!(outcome, Settlement::Captured { .. }) { credit(asked_cents) } else { None };
        self.record_and_settle(actor, id, Operation::Capture, exchanges, outcome, credit).await
    }

    /// Voids: before authorization nothing to release; after, the hold is released.
    pub async fn void(&self, actor: &Actor, id: Uuid) -> Result<IntentState, CommandError> {
        let (current, _, _) = self.load(id).await?;
        let no_gateway =
            current.sponsored || current.created.as_ref().is_some_and(|c| c.method == PaymentMethod::Wallet);
        if no_gateway && current.status() == IntentStatus::RequiresCapture {
            let request = self.request(actor, Operation::Void, None);
            let settle = self.settle(actor, Operation::Void, Settlement::Voided);
            let created = current.owned_by(actor.company).ok_or(DomainError::NotFound("payment intent"))?;
            if current.sponsored {
                return self.commit(actor, id, &[request, settle], None).await;
            }
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let release = WalletCommand::Release { intent_id: id, at: self.now() };
            return self.commit(actor, id, &[request, settle], Some((&customer, vec![release]))).await;
        }
        let state = self.commit(actor, id, &[self.request(actor, Operation::Void, None)], None).await?;
        let Some(pending) = state.pending.clone() else { return Ok(state) }; // voided at once
        let created = state.created.clone().ok_or(DomainError::NotFound("payment intent"))?;
        if state.sponsored {
            return self.commit(actor, id, &[self.settle(actor, Operation::Void, Settlement::Voided)], None).await;
        }
        if created.method == PaymentMethod::Wallet {
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let release = WalletCommand::Release { intent_id: id, at: self.now() };
            return self
                .commit(
                    actor,
                    id,
                    &[self.settle(actor, Operation::Void, Settlement::Voided)],
                    Some((&customer, vec![release])),
                )
                .await;
        }
        let charge = state.charge_id.clone().unwrap_or_default();
        let called = self.gateway.cancel(&charge, None, &pending.idempotency_key).await;
        self.settle_call(actor, id, Operation::Void, called, |_| Settlement::Voided).await
    }
}
