//! Authorization: card / Google Pay / Apple Pay pre-authorization, PIX codes,
//! wallet holds and VIP sponsorship; wallet top-ups.

use domain::{
    payment::{Customer, IntentStatus, Operation, PaymentMethod, Settlement},
    wallet::{WalletCommand, WalletError},
    DomainError, FieldError, Money,
};
use serde_json::Value;
use uuid::Uuid;

use super::{port::AuthorizeRequest, Actor, AuthorizeInput, IntentState, NewIntent, Payments};
use crate::CommandError;

impl Payments {
    /// Authorizes: card / Google Pay / Apple Pay pre-authorization, PIX code,
    /// wallet hold, or VIP sponsorship.
    pub async fn authorize(&self, actor: &Actor, id: Uuid, input: AuthorizeInput) -> Result<IntentState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        let created = state.owned_by(actor.company).ok_or(DomainError::NotFound("payment intent"))?.clone();
        match created.method {
            PaymentMethod::CreditCard if input.card_token.as_deref().is_none_or(str::is_empty) => {
                return Err(DomainError::Conflicting(vec![FieldError::new(
                    "cardToken",
                    "is required: this intent's method is CREDIT_CARD",
                )])
                .into())
            }
            PaymentMethod::GooglePay | PaymentMethod::ApplePay
                if !input.network_token.as_ref().is_some_and(Value::is_object) =>
            {
                return Err(DomainError::Conflicting(vec![FieldError::new(
                    "networkToken",
                    "the encrypted wallet payload (an object) is required for this intent's method",
                )])
                .into())
            }
            _ => {}
        }
        let request = self.request(actor, Operation::Authorize, None);
        match created.method {
            PaymentMethod::Vip => return self.commit(actor, id, &[request], None).await,
            PaymentMethod::Wallet => {
                let customer = created.customer.customer_id.clone().unwrap_or_default();
                let hold = WalletCommand::Hold { intent_id: id, amount: created.amount, at: self.now() };
                let authorized = self.settle(
                    actor,
                    Operation::Authorize,
                    Settlement::Authorized {
                        amount_capturable: Money::from_cents(created.amount),
                        order_id: None,
                        charge_id: None,
                        already_collected: false,
                    },
                );
                return match self.commit(actor, id, &[request.clone(), authorized], Some((&customer, vec![hold]))).await
                {
                    Err(CommandError::Domain(e @ DomainError::Wallet(WalletError::InsufficientFunds { .. }))) => {
                        let reason = e.to_string();
                        let failed = self.settle(
                            actor,
                            Operation::Authorize,
                            Settlement::Failed { code: "insufficient_funds".into(), reason, decline_code: None },
                        );
                        self.commit(actor, id, &[request, failed], None).await
                    }
                    other => other,
                };
            }
            _ => {}
        }
        let state = self.commit(actor, id, &[request], None).await?;
        let key = state.pending.as_ref().map(|p| p.idempotency_key.clone()).unwrap_or_default();
        let call = AuthorizeRequest {
            intent_id: id,
            amount: created.amount,
            method: created.method,
            card_token: input.card_token,
            network_token: input.network_token,
            customer: created.customer.clone(),
            pix_expires_in: self.pix_expires_in,
            description: created.description.clone().unwrap_or_else(|| "EV charging".into()),
            idempotency_key: key,
        };
        let called = self.gateway.authorize(&call).await;
        let state = self.settle_call(actor, id, Operation::Authorize, called, Self::authorization).await?;
        self.after_authorization(actor, id, state).await
    }

    /// Top-ups are collected as soon as they are authorized.
    pub(super) async fn after_authorization(
        &self,
        actor: &Actor,
        id: Uuid,
        state: IntentState,
    ) -> Result<IntentState, CommandError> {
        let top_up = state.created.as_ref().is_some_and(|c| c.top_up_wallet.is_some());
        if top_up && state.status() == IntentStatus::RequiresCapture {
            return self.capture(actor, id, None).await;
        }
        Ok(state)
    }

    /// Charges a wallet: a top-up intent (card or PIX) credited once collected.
    pub async fn top_up(
        &self,
        actor: &Actor,
        customer: &str,
        amount: i64,
        method: PaymentMethod,
        input: AuthorizeInput,
    ) -> Result<(Uuid, IntentState), CommandError> {
        let new = NewIntent {
            amount,
            method,
            customer: Customer { customer_id: Some(customer.to_owned()), ..Customer::default() },
            description: Some("wallet top-up".into()),
            top_up_wallet: Some(customer.to_owned()),
        };
        let (id, _) = self.create(actor, new).await?;
        let state = self.authorize(actor, id, input).await?;
        Ok((id, state))
    }
}
