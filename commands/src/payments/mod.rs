//! The payment service: payment intents on a gateway, and wallets.
//!
//! Each gateway operation is first recorded as requested (the intent is then
//! `processing` and refuses a second one), then the gateway is called with an
//! idempotency key derived from the intent and the operation, then its answer
//! is recorded — every exchange, redacted, and the settlement — in one append.
//! An unknown outcome (timeout, 5xx) stays `processing` until [`Payments::reconcile`]
//! learns it from the gateway; the operation is never sent twice.

pub mod port;
mod refunds;

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use domain::{
    payment::{
        Customer, GatewayExchanged, IntentCommand, IntentState, IntentStatus, Operation, PaymentIntent,
        PaymentIntentEvent, PaymentMethod, PixQrIssued, Settlement, WebhookReceived,
    },
    wallet::{Wallet, WalletCommand, WalletState},
    Aggregate, CompanyId, DomainError, Money,
};
use port::{AuthorizeRequest, Called, ChargeSnapshot, ChargeStatus, GatewayError, PaymentGateway};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    store::{EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamWrite},
    CommandError,
};

/// Who acts.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Company.
    pub company: CompanyId,
    /// `user:…`, `api-key:…`, `gateway:pagarme`, `system:reconciler`.
    pub actor: String,
    /// Correlation id.
    pub correlation: Uuid,
}

/// The commands that record a gateway call's HTTP exchanges on the intent.
fn record_exchanges(actor: &Actor, operation: Operation, exchanges: Vec<port::Exchange>) -> Vec<IntentCommand> {
    exchanges
        .into_iter()
        .map(|x| IntentCommand::RecordExchange {
            company_id: actor.company,
            exchange: GatewayExchanged {
                operation,
                request_line: x.request_line,
                idempotency_key: x.idempotency_key,
                request: x.request,
                http_status: x.http_status,
                response: x.response,
                outcome: x.outcome,
                duration_ms: x.duration_ms,
                at: x.at,
            },
        })
        .collect()
}

impl Actor {
    pub(crate) fn metadata(&self) -> Metadata {
        Metadata {
            company_id: Some(self.company.as_uuid()),
            correlation_id: self.correlation,
            causation_id: None,
            actor: self.actor.clone(),
            command_id: None,
        }
    }
}

/// A new intent.
#[derive(Debug, Clone)]
pub struct NewIntent {
    /// Cents.
    pub amount: i64,
    /// Method.
    pub method: PaymentMethod,
    /// Payer.
    pub customer: Customer,
    /// Description.
    pub description: Option<String>,
    /// Wallet to credit once collected.
    pub top_up_wallet: Option<String>,
}

/// How to authorize.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeInput {
    /// Card token (CREDIT_CARD).
    pub card_token: Option<String>,
    /// Encrypted wallet token (GOOGLE_PAY, APPLE_PAY).
    pub network_token: Option<Value>,
}

/// The payment service.
#[derive(Clone)]
pub struct Payments {
    store: EventStore,
    gateway: Arc<dyn PaymentGateway>,
    pix_expires_in: i64,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments").field("gateway", &self.gateway.name()).finish_non_exhaustive()
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

const MAX_ATTEMPTS: usize = 5;

impl Payments {
    /// A service over the log and a gateway; PIX codes last `pix_expires_in` seconds.
    pub fn new(store: EventStore, gateway: Arc<dyn PaymentGateway>, pix_expires_in: i64) -> Self {
        Self { store, gateway, pix_expires_in }
    }

    /// The gateway's name.
    pub fn gateway_name(&self) -> &'static str {
        self.gateway.name()
    }

    /// The intent and its stream version.
    pub async fn load(&self, id: Uuid) -> Result<(IntentState, i64, Option<[u8; 32]>), CommandError> {
        let recorded = self.store.read_stream(&PaymentIntent::stream_id(id)).await?;
        let mut state = IntentState::default();
        for r in &recorded {
            state = PaymentIntent::evolve(state, &r.decode::<PaymentIntentEvent>()?);
        }
        Ok((state, recorded.last().map_or(0, |r| r.stream_version), recorded.last().map(RecordedEvent::hash_array)))
    }

    /// The intent, if the company owns it.
    pub async fn get(&self, company: CompanyId, id: Uuid) -> Result<IntentState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        if state.owned_by(company).is_none() {
            return Err(DomainError::NotFound("payment intent").into());
        }
        Ok(state)
    }

    /// The intent's full history, for auditors.
    pub async fn history(&self, company: CompanyId, id: Uuid) -> Result<Vec<RecordedEvent>, CommandError> {
        self.get(company, id).await?;
        Ok(self.store.read_stream(&PaymentIntent::stream_id(id)).await?)
    }

    /// A customer's wallet.
    pub async fn wallet(
        &self,
        company: CompanyId,
        customer: &str,
    ) -> Result<(WalletState, i64, Option<[u8; 32]>), CommandError> {
        let recorded = self.store.read_stream(&Wallet::stream_id(company, customer)).await?;
        let mut state = WalletState::default();
        for r in &recorded {
            state = Wallet::evolve(state, &r.decode()?);
        }
        Ok((state, recorded.last().map_or(0, |r| r.stream_version), recorded.last().map(RecordedEvent::hash_array)))
    }

    /// Decides `commands` on the intent (and `wallet` commands on a wallet) and
    /// appends everything in one transaction; retries on a concurrent change.
    async fn commit(
        &self,
        actor: &Actor,
        id: Uuid,
        commands: &[IntentCommand],
        wallet: Option<(&str, Vec<WalletCommand>)>,
    ) -> Result<IntentState, CommandError> {
        for _ in 0..MAX_ATTEMPTS {
            let (mut state, version, hash) = self.load(id).await?;
            let mut events = Vec::new();
            for command in commands {
                let decided = PaymentIntent::decide(&state, command.clone())?;
                state = decided.iter().fold(state, PaymentIntent::evolve);
                events.extend(decided);
            }
            let mut writes = vec![StreamWrite {
                stream_id: PaymentIntent::stream_id(id),
                expected: ExpectedVersion::Exact(version),
                prev_hash: hash,
                events: events.iter().map(NewEvent::from_domain).collect(),
                metadata: actor.metadata(),
            }];
            if let Some((customer, wallet_commands)) = &wallet {
                let (mut w, w_version, w_hash) = self.wallet(actor.company, customer).await?;
                let mut w_events = Vec::new();
                for command in wallet_commands {
                    let decided = Wallet::decide(&w, command.clone())?;
                    w = decided.iter().fold(w, Wallet::evolve);
                    w_events.extend(decided);
                }
                writes.push(StreamWrite {
                    stream_id: Wallet::stream_id(actor.company, customer),
                    expected: ExpectedVersion::Exact(w_version),
                    prev_hash: w_hash,
                    events: w_events.iter().map(NewEvent::from_domain).collect(),
                    metadata: actor.metadata(),
                });
            }
            writes.retain(|w| !w.events.is_empty());
            if writes.is_empty() {
                return Ok(state);
            }
            match self.store.append(&writes, None).await {
                Ok(_) => return Ok(state),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::TooMuchContention(PaymentIntent::stream_id(id)))
    }

    /// Creates an intent.
    pub async fn create(&self, actor: &Actor, input: NewIntent) -> Result<(Uuid, IntentState), CommandError> {
        let id = Uuid::now_v7();
        let create = IntentCommand::Create {
            intent_id: id,
            company_id: actor.company,
            amount: Money::from_cents(input.amount),
            method: input.method,
            customer: input.customer,
            description: input.description,
            top_up_wallet: input.top_up_wallet,
            now: now(),
        };
        let state = self.commit(actor, id, &[create], None).await?;
        Ok((id, state))
    }

    fn request(actor: &Actor, operation: Operation, amount: Option<Money>) -> IntentCommand {
        IntentCommand::Request { company_id: actor.company, operation, amount, now: now() }
    }

    fn settle(actor: &Actor, operation: Operation, outcome: Settlement) -> IntentCommand {
        IntentCommand::Settle { company_id: actor.company, operation, outcome, now: now() }
    }

    /// Records a gateway call's exchanges and its settlement together.
    async fn settle_call<T>(
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
        commands.push(Self::settle(actor, operation, outcome));
        let wallet = reversal.as_ref().map(|(customer, commands)| (customer.as_str(), commands.clone()));
        self.commit_settlement(actor, id, commands, wallet).await
    }

    /// Appends a settlement; if the operation was settled meanwhile (by the
    /// reconciler or a webhook), keeps only the record of the exchanges.
    async fn commit_settlement(
        &self,
        actor: &Actor,
        id: Uuid,
        mut commands: Vec<IntentCommand>,
        wallet: Option<(&str, Vec<WalletCommand>)>,
    ) -> Result<IntentState, CommandError> {
        match self.commit(actor, id, &commands, wallet).await {
            Err(CommandError::Domain(DomainError::InvalidState(reason)))
                if reason == "no such operation in progress" =>
            {
                commands.retain(|c| matches!(c, IntentCommand::RecordExchange { .. }));
                self.commit(actor, id, &commands, None).await
            }
            other => other,
        }
    }

    fn authorization(snapshot: ChargeSnapshot) -> Settlement {
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

    /// Authorizes: card / Google Pay / Apple Pay pre-authorization, PIX code,
    /// wallet hold, or VIP sponsorship.
    pub async fn authorize(&self, actor: &Actor, id: Uuid, input: AuthorizeInput) -> Result<IntentState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        let created = state.owned_by(actor.company).ok_or(DomainError::NotFound("payment intent"))?.clone();
        match created.method {
            PaymentMethod::CreditCard if input.card_token.as_deref().is_none_or(str::is_empty) => {
                return Err(DomainError::field("cardToken", "is required for CREDIT_CARD").into())
            }
            PaymentMethod::GooglePay | PaymentMethod::ApplePay
                if !input.network_token.as_ref().is_some_and(Value::is_object) =>
            {
                return Err(
                    DomainError::field("networkToken", "the encrypted wallet payload (an object) is required").into()
                )
            }
            _ => {}
        }
        let request = Self::request(actor, Operation::Authorize, None);
        match created.method {
            PaymentMethod::Vip => return self.commit(actor, id, &[request], None).await,
            PaymentMethod::Wallet => {
                let customer = created.customer.customer_id.clone().unwrap_or_default();
                let hold = WalletCommand::Hold { intent_id: id, amount: created.amount, at: now() };
                let authorized = Self::settle(
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
                    Err(CommandError::Domain(e @ DomainError::InsufficientFunds { .. })) => {
                        let reason = e.to_string();
                        let failed = Self::settle(
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
    async fn after_authorization(
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

    /// Captures `amount` (all that is capturable by default); the rest is released
    /// (PIX: refunded).
    pub async fn capture(&self, actor: &Actor, id: Uuid, amount: Option<Money>) -> Result<IntentState, CommandError> {
        let (current, _, _) = self.load(id).await?;
        if let Some(created) = current.owned_by(actor.company).filter(|_| {
            current.sponsored || current.created.as_ref().is_some_and(|c| c.method == PaymentMethod::Wallet)
        }) {
            // No gateway: request and settlement in one commit, so no crash leaves it processing.
            let asked = amount.unwrap_or(current.capturable);
            let request = Self::request(actor, Operation::Capture, amount);
            let settle = Self::settle(
                actor,
                Operation::Capture,
                Settlement::Captured { amount: asked, refunded: Money::default() },
            );
            if current.sponsored {
                return self.commit(actor, id, &[request, settle], None).await;
            }
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let debit =
                WalletCommand::Capture { intent_id: id, amount: asked.to_cents().unwrap_or_default(), at: now() };
            return self.commit(actor, id, &[request, settle], Some((&customer, vec![debit]))).await;
        }
        let state = self.commit(actor, id, &[Self::request(actor, Operation::Capture, amount)], None).await?;
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
                        at: now(),
                    }],
                )
            })
        };
        let captured = |refunded: Money| Settlement::Captured { amount: asked, refunded };
        let asked_cents = asked.to_cents().unwrap_or_default();
        if state.sponsored {
            return self
                .commit(actor, id, &[Self::settle(actor, Operation::Capture, captured(Money::default()))], None)
                .await;
        }
        if created.method == PaymentMethod::Wallet {
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let debit = WalletCommand::Capture { intent_id: id, amount: asked_cents, at: now() };
            return self
                .commit(
                    actor,
                    id,
                    &[Self::settle(actor, Operation::Capture, captured(Money::default()))],
                    Some((&customer, vec![debit])),
                )
                .await;
        }
        let charge = state.charge_id.clone().unwrap_or_default();
        if state.already_collected {
            // PIX: the money is in; keep `asked`, refund the rest.
            let rest = Money::from_decimal(state.capturable.amount() - asked.amount());
            if rest.to_cents().unwrap_or_default() == 0 {
                let settle = Self::settle(actor, Operation::Capture, captured(Money::default()));
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

    async fn record_and_settle(
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
        commands.push(Self::settle(actor, operation, outcome));
        self.commit_settlement(actor, id, commands, wallet).await
    }

    /// Voids: before authorization nothing to release; after, the hold is released.
    pub async fn void(&self, actor: &Actor, id: Uuid) -> Result<IntentState, CommandError> {
        let (current, _, _) = self.load(id).await?;
        let no_gateway =
            current.sponsored || current.created.as_ref().is_some_and(|c| c.method == PaymentMethod::Wallet);
        if no_gateway && current.status() == IntentStatus::RequiresCapture {
            let request = Self::request(actor, Operation::Void, None);
            let settle = Self::settle(actor, Operation::Void, Settlement::Voided);
            let created = current.owned_by(actor.company).ok_or(DomainError::NotFound("payment intent"))?;
            if current.sponsored {
                return self.commit(actor, id, &[request, settle], None).await;
            }
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let release = WalletCommand::Release { intent_id: id, at: now() };
            return self.commit(actor, id, &[request, settle], Some((&customer, vec![release]))).await;
        }
        let state = self.commit(actor, id, &[Self::request(actor, Operation::Void, None)], None).await?;
        let Some(pending) = state.pending.clone() else { return Ok(state) }; // voided at once
        let created = state.created.clone().ok_or(DomainError::NotFound("payment intent"))?;
        if state.sponsored {
            return self.commit(actor, id, &[Self::settle(actor, Operation::Void, Settlement::Voided)], None).await;
        }
        if created.method == PaymentMethod::Wallet {
            let customer = created.customer.customer_id.clone().unwrap_or_default();
            let release = WalletCommand::Release { intent_id: id, at: now() };
            return self
                .commit(
                    actor,
                    id,
                    &[Self::settle(actor, Operation::Void, Settlement::Voided)],
                    Some((&customer, vec![release])),
                )
                .await;
        }
        let charge = state.charge_id.clone().unwrap_or_default();
        let called = self.gateway.cancel(&charge, None, &pending.idempotency_key).await;
        self.settle_call(actor, id, Operation::Void, called, |_| Settlement::Voided).await
    }

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
                if charge.pix.as_ref().is_some_and(|p| p.expires_at < now()) {
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
                    at: now(),
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

    /// Intents with an operation in flight for longer than `grace` (so requests
    /// still waiting for the gateway are left alone), oldest first.
    pub async fn in_flight(
        &self,
        grace: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<(Uuid, CompanyId)>, StoreError> {
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT id, company_id FROM rm_payments.intents WHERE status = 'processing' \
             AND updated_at < now() - $2 * interval '1 millisecond' ORDER BY random() LIMIT $1",
        )
        .bind(limit)
        .bind(grace.as_millis() as i64)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.into_iter().map(|(id, company)| (id, CompanyId(company))).collect())
    }
}
