//! Refunds: a gateway refund (for a top-up, with its wallet debit in the
//! request's append), or at once for wallet and sponsored intents.

use domain::{
    payment::{Operation, PaymentMethod, Settlement},
    wallet::WalletCommand,
    CompanyId, DomainError, Money,
};
use uuid::Uuid;

use super::{Actor, IntentState, Payments};
use crate::CommandError;

impl Payments {
    /// Refunds captured money (all that is left by default).
    pub async fn refund(&self, actor: &Actor, id: Uuid, amount: Option<Money>) -> Result<IntentState, CommandError> {
        let (current, _, _) = self.load(id).await?;
        if current.sponsored || current.created.as_ref().is_some_and(|c| c.method == PaymentMethod::Wallet) {
            let created = current.owned_by(actor.company).ok_or(DomainError::NotFound("payment intent"))?.clone();
            let left = Money::from_decimal(current.captured.amount() - current.refunded.amount());
            let asked = amount.unwrap_or(left);
            let request = self.request(actor, Operation::Refund, amount);
            let settle = self.settle(actor, Operation::Refund, Settlement::Refunded { amount: asked });
            if current.sponsored {
                return self.commit(actor, id, &[request, settle], None).await;
            }
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let credit = WalletCommand::Credit {
                company_id: actor.company,
                customer_id: customer.clone(),
                amount: asked.to_cents().unwrap_or_default(),
                source_intent_id: id,
                at: self.now(),
            };
            return self.commit(actor, id, &[request, settle], Some((&customer, vec![credit]))).await;
        }
        // A top-up's credit goes back with its money: the wallet is debited in
        // the request's append (both streams, both versions checked), so a
        // refund of credit already spent or held is refused before the
        // gateway is called, and two refunds cannot both spend the same credit.
        let top_up = current.created.as_ref().and_then(|c| c.top_up_wallet.clone());
        let (amount, debit) = match top_up {
            Some(customer) => {
                let left =
                    current.captured.amount() - (current.refunded.amount() - current.returned_at_capture.amount());
                let asked = amount.unwrap_or(Money::from_decimal(left));
                let debit = WalletCommand::Debit {
                    source_intent_id: id,
                    amount: asked.to_cents().unwrap_or_default(),
                    at: self.now(),
                };
                (Some(asked), Some((customer, vec![debit])))
            }
            None => (amount, None),
        };
        let wallet = debit.as_ref().map(|(customer, commands)| (customer.as_str(), commands.clone()));
        let state = self.commit(actor, id, &[self.request(actor, Operation::Refund, amount)], wallet).await?;
        let pending = state.pending.clone().ok_or(DomainError::InvalidState("no refund in progress".into()))?;
        let created = state.created.clone().ok_or(DomainError::NotFound("payment intent"))?;
        let refund = Settlement::Refunded { amount: pending.amount };
        if state.sponsored {
            return self.commit(actor, id, &[self.settle(actor, Operation::Refund, refund)], None).await;
        }
        if created.method == PaymentMethod::Wallet {
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let credit = WalletCommand::Credit {
                company_id: actor.company,
                customer_id: customer.clone(),
                amount: pending.amount.to_cents().unwrap_or_default(),
                source_intent_id: id,
                at: self.now(),
            };
            return self
                .commit(actor, id, &[self.settle(actor, Operation::Refund, refund)], Some((&customer, vec![credit])))
                .await;
        }
        let charge = state.charge_id.clone().unwrap_or_default();
        let called = self.gateway.cancel(&charge, pending.amount.to_cents(), &pending.idempotency_key).await;
        self.settle_call(actor, id, Operation::Refund, called, move |_| refund).await
    }

    /// A failed refund of a top-up gives the wallet back what its request debited.
    pub(super) async fn refund_reversal(&self, id: Uuid) -> Result<Option<(String, Vec<WalletCommand>)>, CommandError> {
        let (state, _, _) = self.load(id).await?;
        let Some(created) = &state.created else { return Ok(None) };
        let (Some(customer), Some(pending)) =
            (&created.top_up_wallet, state.pending.as_ref().filter(|p| p.operation == Operation::Refund))
        else {
            return Ok(None);
        };
        let amount = pending.amount.to_cents().unwrap_or_default();
        // A refund requested before debits existed has nothing to give back.
        let (wallet, _, _) = self.wallet(CompanyId(created.company_id), customer).await?;
        if wallet.debits.get(&id).copied().unwrap_or(0) < amount {
            return Ok(None);
        }
        let reverse = WalletCommand::ReverseDebit { source_intent_id: id, amount, at: self.now() };
        Ok(Some((customer.clone(), vec![reverse])))
    }
}
