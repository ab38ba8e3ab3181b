//! Recording a gateway call: its HTTP exchanges and the settlement it leads
//! to, in one append; and mapping a gateway's charge to a settlement.

use domain::{
    payment::{IntentCommand, Operation, PaymentError, PixQrIssued, Settlement},
    wallet::WalletCommand,
    DomainError, Money,
};
use uuid::Uuid;

use super::{
    port::{self, Called, ChargeSnapshot, ChargeStatus, GatewayError},
    record_exchanges, Actor, IntentState, Payments,
};
use crate::CommandError;

impl Payments {
    pub(super) fn request(&self, actor: &Actor, operation: Operation, amount: Option<Money>) -> IntentCommand {
        IntentCommand::Request { company_id: actor.company, operation, amount, now: self.now() }
    }

    pub(super) fn settle(&self, actor: &Actor, operation: Operation, outcome: Settlement) -> IntentCommand {
        IntentCommand::Settle { company_id: actor.company, operation, outcome, now: self.now() }
    }

    /// Records a gateway call's exchanges and its settlement together.
    pub(super) async fn settle_call<T>(
        &self,
        actor: &Actor,
        id: Uuid,
        operation: Operation,
        called: Called<T>,
        map: impl FnOnce(T) -> Settlement,
    ) -> Result<IntentState, CommandError> {
        let mut commands = record_exchanges(actor, operation, called.exchanges);
        let outcome = match called.result {
            Ok(value) => map(value),
            Err(GatewayError::Declined { code, message }) => {
                Settlement::Failed { code: "card_declined".into(), reason: message, decline_code: code }
            }
            Err(GatewayError::Rejected { status, message }) => Settlement::Failed {
                code: "gateway_rejected".into(),
                reason: format!("the gateway refused the request ({status}): {message}"),
                decline_code: None,
            },
            Err(GatewayError::Unknown(reason)) => Settlement::Unknown { reason },
        };
        let reversal = if operation == Operation::Refund && matches!(outcome, Settlement::Failed { .. }) {
            self.refund_reversal(id).await?
        } else {
            None
        };
        commands.push(self.settle(actor, operation, outcome));
        let wallet = reversal.as_ref().map(|(customer, commands)| (customer.as_str(), commands.clone()));
        self.commit_settlement(actor, id, commands, wallet).await
    }

    /// Appends a settlement; if the operation was settled meanwhile (by the
    /// reconciler or a webhook), keeps only the record of the exchanges.
    pub(super) async fn commit_settlement(
        &self,
        actor: &Actor,
        id: Uuid,
        mut commands: Vec<IntentCommand>,
        wallet: Option<(&str, Vec<WalletCommand>)>,
    ) -> Result<IntentState, CommandError> {
        match self.commit(actor, id, &commands, wallet).await {
            Err(CommandError::Domain(DomainError::Payment(PaymentError::NoOperationInProgress))) => {
                commands.retain(|c| matches!(c, IntentCommand::RecordExchange { .. }));
                self.commit(actor, id, &commands, None).await
            }
            other => other,
        }
    }

    pub(super) fn authorization(snapshot: ChargeSnapshot) -> Settlement {
        match snapshot.status {
            ChargeStatus::Authorized => Settlement::Authorized {
                amount_capturable: Money::from_cents(snapshot.amount),
                order_id: Some(snapshot.order_id),
                charge_id: Some(snapshot.charge_id),
                already_collected: false,
            },
            ChargeStatus::Paid => Settlement::Authorized {
                amount_capturable: Money::from_cents(snapshot.paid_amount.max(snapshot.amount)),
                order_id: Some(snapshot.order_id),
                charge_id: Some(snapshot.charge_id),
                already_collected: true,
            },
            ChargeStatus::WaitingPayment => match snapshot.pix {
                Some(pix) => Settlement::PixIssued(PixQrIssued {
                    order_id: snapshot.order_id,
                    charge_id: snapshot.charge_id,
                    qr_code: pix.qr_code,
                    qr_code_url: pix.qr_code_url,
                    expires_at: pix.expires_at,
                }),
                None => Settlement::Unknown { reason: "waiting for payment without a PIX code".into() },
            },
            ChargeStatus::Failed { code, message } => {
                Settlement::Failed { code: "card_declined".into(), reason: message, decline_code: code }
            }
            ChargeStatus::Canceled => Settlement::Failed {
                code: "canceled".into(),
                reason: "the gateway canceled the charge".into(),
                decline_code: None,
            },
            ChargeStatus::Other(status) => Settlement::Unknown { reason: format!("charge status {status}") },
        }
    }

    pub(super) async fn record_and_settle(
        &self,
        actor: &Actor,
        id: Uuid,
        operation: Operation,
        exchanges: Vec<port::Exchange>,
        outcome: Settlement,
        wallet: Option<(&str, Vec<WalletCommand>)>,
    ) -> Result<IntentState, CommandError> {
        let wallet = if matches!(outcome, Settlement::Captured { .. }) { wallet } else { None };
        let mut commands = record_exchanges(actor, operation, exchanges);
        commands.push(self.settle(actor, operation, outcome));
        self.commit_settlement(actor, id, commands, wallet).await
    }
}
