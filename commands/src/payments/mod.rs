//! The payment service: payment intents on a gateway, and wallets.
//!
//! Each gateway operation is first recorded as requested (the intent is then
//! `processing` and refuses a second one), then the gateway is called with an
//! idempotency key derived from the intent and the operation, then its answer
//! is recorded — every exchange, redacted, and the settlement — in one append.
//! An unknown outcome (timeout, 5xx) stays `processing` until [`Payments::reconcile`]
//! learns it from the gateway; the operation is never sent twice.

mod authorize;
mod capture;
pub mod port;
mod reconcile;
mod refunds;
mod settlement;

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use domain::{
    payment::{Customer, GatewayExchanged, IntentCommand, IntentState, Operation, PaymentIntent, PaymentMethod},
    wallet::{Wallet, WalletCommand, WalletState},
    CompanyId, DomainError, Money,
};
use port::PaymentGateway;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    clock::Clock,
    decision::{self, Ran, Stream},
    handler::{self, CommandContext},
    store::{EventStore, RecordedEvent},
    CommandError,
};

/// Who acts.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The company acting; every intent read or written must belong to it.
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
    /// The context of a command this actor runs; `command_id` `None` gets a
    /// fresh id from the command path.
    pub fn context(&self, command_id: Option<String>) -> CommandContext {
        CommandContext {
            company_id: self.company.as_uuid(),
            command_id,
            request_hash: vec![],
            correlation_id: self.correlation,
            causation_id: None,
            actor: self.actor.clone(),
        }
    }
}

/// The `command_log` type of a payment decision: its first command's.
fn command_type(commands: &[IntentCommand]) -> &'static str {
    match commands.first() {
        Some(IntentCommand::Create { .. }) => "payment_intent.create",
        Some(IntentCommand::Request { operation, .. }) => match operation {
            Operation::Authorize => "payment_intent.request_authorize",
            Operation::Capture => "payment_intent.request_capture",
            Operation::Void => "payment_intent.request_void",
            Operation::Refund => "payment_intent.request_refund",
        },
        Some(IntentCommand::Settle { operation, .. }) => match operation {
            Operation::Authorize => "payment_intent.settle_authorize",
            Operation::Capture => "payment_intent.settle_capture",
            Operation::Void => "payment_intent.settle_void",
            Operation::Refund => "payment_intent.settle_refund",
        },
        Some(IntentCommand::RecordExchange { .. }) => "payment_intent.record_exchange",
        Some(IntentCommand::RecordWebhook { .. }) => "payment_intent.record_webhook",
        None => "payment_intent.none",
    }
}

/// A new intent.
#[derive(Debug, Clone)]
pub struct NewIntent {
    /// Amount to collect, in integer cents of BRL (5000 = R$ 50.00).
    pub amount: i64,
    /// How the payer pays; WALLET needs the payer's customer id.
    pub method: PaymentMethod,
    /// Who pays: customer id, name, e-mail and CPF, as far as given.
    pub customer: Customer,
    /// Free text; the gateway order's item shows it (default `EV charging`).
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
    clock: Clock,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments").field("gateway", &self.gateway.name()).finish_non_exhaustive()
    }
}

impl Payments {
    /// A service over the log and a gateway; PIX codes last `pix_expires_in` seconds.
    pub fn new(store: EventStore, gateway: Arc<dyn PaymentGateway>, pix_expires_in: i64) -> Self {
        Self { store, gateway, pix_expires_in, clock: Clock::default() }
    }

    /// The same service reading time from `clock` (tests move it instead of
    /// waiting): every time a payment decision or event carries comes from it.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the service's clock, at the log's precision (microseconds).
    pub(super) fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// The gateway's name.
    pub fn gateway_name(&self) -> &'static str {
        self.gateway.name()
    }

    /// The intent, its stream version and last hash, as the log has it.
    pub async fn load(&self, id: Uuid) -> Result<(IntentState, i64, Option<[u8; 32]>), CommandError> {
        let loaded = handler::load::<PaymentIntent>(&self.store, &PaymentIntent::stream_id(id)).await?;
        Ok((loaded.state, loaded.version, loaded.last_hash))
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

    /// A customer's wallet, its stream version and last hash.
    pub async fn wallet(
        &self,
        company: CompanyId,
        customer: &str,
    ) -> Result<(WalletState, i64, Option<[u8; 32]>), CommandError> {
        let loaded = handler::load::<Wallet>(&self.store, &Wallet::stream_id(company, customer)).await?;
        Ok((loaded.state, loaded.version, loaded.last_hash))
    }

    /// Decides `commands` on the intent (and `wallet` commands on a wallet)
    /// through the one command path: both streams appended in one
    /// transaction with their versions checked, decided again on a
    /// concurrent change.
    async fn commit(
        &self,
        actor: &Actor,
        id: Uuid,
        commands: &[IntentCommand],
        wallet: Option<(&str, Vec<WalletCommand>)>,
    ) -> Result<IntentState, CommandError> {
        let intent = PaymentIntent::stream_id(id);
        let wallet = wallet.map(|(customer, commands)| (Wallet::stream_id(actor.company, customer), commands));
        let mut streams = vec![Stream::of::<PaymentIntent>(&intent)];
        streams.extend(wallet.iter().map(|(stream, _)| Stream::of::<Wallet>(stream)));
        let ran = decision::run(
            &self.store,
            &actor.context(None),
            command_type(commands),
            streams,
            |d| {
                d.decide_all::<PaymentIntent>(&intent, commands.iter().cloned())?;
                if let Some((stream, commands)) = &wallet {
                    d.decide_all::<Wallet>(stream, commands.iter().cloned())?;
                }
                Ok(d.state::<PaymentIntent>(&intent)?.clone())
            },
            |state| json!({ "status": state.status().as_str() }),
        )
        .await?;
        match ran {
            Ran::Decided { value, .. } => Ok(value),
            // Only a caller-given command id replays; these are always fresh.
            Ran::Replayed(_) => Ok(self.load(id).await?.0),
        }
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
            now: self.now(),
        };
        let state = self.commit(actor, id, &[create], None).await?;
        Ok((id, state))
    }
}
