//! Charge orchestration: the session service and its queues.
//!
//! The service starts sessions (pre-authorize, then remote-start the charger)
//! and stops them; [`manager`] reacts to what chargers and the payment gateway
//! do (in log order, from a checkpoint) and works the queues — settlement
//! (capture), refunds and receipts — from the session's own events, so a
//! restart loses nothing and repeats nothing.

mod adhoc;
mod check;
pub mod directory;
pub mod due;
mod lookup;
pub mod manager;
mod queues;
pub mod receipt;
mod start;
mod stop;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use domain::{
    charger::{
        command::{OcppCommandEvent, OcppCommandRequested},
        requests::{self, ChargerRequest},
    },
    payment::PaymentMethod,
    session::{ChargeSession, SessionCommand, SessionKind, SessionState, SessionStatus},
    terminal::OcppVersion,
    CompanyId, DomainError, FieldError,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

pub use directory::{ChargerDirectory, ChargerSnapshot};
pub use due::{DueQuery, DueSession, ReadModelError, SessionQueue};

use crate::{
    clock::Clock,
    decision::{self, Ran, Stream},
    handler,
    payments::{Actor, Payments},
    store::{EventStore, RecordedEvent, StoreError},
    CommandError,
};

/// The `command_log` type of a session decision: its first command's.
fn command_type(commands: &[SessionCommand]) -> &'static str {
    match commands.first() {
        Some(SessionCommand::Start(_)) => "charge_session.start",
        Some(SessionCommand::PaymentAuthorized { .. }) => "charge_session.payment_authorized",
        Some(SessionCommand::PaymentFailed(_)) => "charge_session.payment_failed",
        Some(SessionCommand::RemoteStartSent(_)) => "charge_session.remote_start",
        Some(SessionCommand::ChargingStarted(_)) => "charge_session.charging_started",
        Some(SessionCommand::Progress { .. }) => "charge_session.progress",
        Some(SessionCommand::RequestStop(_)) => "charge_session.request_stop",
        Some(SessionCommand::ChargingStopped { .. }) => "charge_session.charging_stopped",
        Some(SessionCommand::Settled(_)) => "charge_session.settled",
        Some(SessionCommand::SettlementFailed(_)) => "charge_session.settlement_failed",
        Some(SessionCommand::Cancel(_)) => "charge_session.cancel",
        Some(SessionCommand::RequestRefund(_)) => "charge_session.request_refund",
        Some(SessionCommand::RefundFailed(_)) => "charge_session.refund_failed",
        Some(SessionCommand::Refunded { .. }) => "charge_session.refunded",
        Some(SessionCommand::ReceiptSent(_)) => "charge_session.receipt_sent",
        Some(SessionCommand::ReceiptFailed(_)) => "charge_session.receipt_failed",
        None => "charge_session.none",
    }
}

/// Sends receipts.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one plain-text message with a fixed Message-ID.
    async fn send(&self, to: &str, subject: &str, body: &str, message_id: &str) -> Result<(), MailError>;
}

/// Why a receipt was not sent. Its text is recorded in the session's
/// `receipt_failed` event (and so reaches Kafka and webhooks), so it names the
/// kind of failure and the SMTP code only: never the recipient, nor the
/// server's own words, which often echo the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The recipient is not a mailbox the message can be addressed to.
    #[error("the recipient address is not a valid mailbox")]
    InvalidRecipient,
    /// The message itself could not be built.
    #[error("the receipt message could not be built")]
    Unbuildable,
    /// The server refused it for good (an SMTP 5xx reply).
    #[error("the mail server refused the message (SMTP {0})")]
    Refused(u16),
    /// The server refused it for now (an SMTP 4xx reply: greylisting, a full queue).
    #[error("the mail server deferred the message (SMTP {0})")]
    Deferred(u16),
    /// No SMTP reply: connection, TLS or timeout.
    #[error("the mail server could not be reached")]
    Unreachable,
}

/// Queue settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// How long a charger has to start after the remote start.
    pub start_timeout: Duration,
    /// Delays between attempts of the settlement, refund and receipt queues
    /// (jittered ±20 %); after the last, a refund is dead-lettered.
    pub retry_schedule: Vec<Duration>,
    /// Timeout of remote start/stop commands.
    pub command_timeout_ms: i64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            start_timeout: s(120),
            retry_schedule: vec![s(5), s(30), s(120), s(600), s(1800), s(3600), s(7200)],
            command_timeout_ms: 30_000,
        }
    }
}

/// What `POST /charge/start` (and the ad-hoc start) asks for, as the
/// transport read it: a field it could not read is an `Err` naming it, so the
/// service's checks report it with every other bad field in one answer.
#[derive(Debug, Clone)]
pub struct StartInput {
    /// OCPP or ad-hoc.
    pub kind: SessionKind,
    /// The company's station id (positive); it names an ad-hoc session without a charger.
    pub station_id: i64,
    /// Charger: a terminal of the company for OCPP sessions; an ad-hoc session
    /// without one is named after its station.
    pub charge_point_id: Option<String>,
    /// OCPP connector id (0 or more); an OCPP session needs it `Available`.
    pub connector_id: i64,
    /// Whether this process's OCPP gateway holds the charger's connection now
    /// (fresher than the read model, which answers otherwise).
    pub connected_here: bool,
    /// Payment method.
    pub method: Result<PaymentMethod, FieldError>,
    /// Pre-authorization, cents.
    pub amount: i64,
    /// Receipt address.
    pub email: String,
    /// The payer's CPF (check digits verified), passed on with the payment.
    pub cpf: Option<String>,
    /// Card token.
    pub card_token: Option<String>,
    /// Wallet payload.
    pub network_token: Option<Value>,
    /// The customer the session belongs to (a driver's `sub`), and whose
    /// wallet pays (WALLET).
    pub customer_id: Option<String>,
    /// Tariff: reais per kWh.
    pub price_per_kwh: Result<Decimal, FieldError>,
    /// Tariff: reais per session.
    pub fixed_connection_cost: Result<Decimal, FieldError>,
}

/// The session service.
#[derive(Clone)]
pub struct Sessions {
    store: EventStore,
    payments: Payments,
    mailer: Option<Arc<dyn Mailer>>,
    queue: Arc<dyn SessionQueue>,
    directory: Arc<dyn ChargerDirectory>,
    config: SessionConfig,
    clock: Clock,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("config", &self.config)
            .field("mailer", &self.mailer.is_some())
            .finish_non_exhaustive()
    }
}

/// A charger command asked for with a session transition.
#[derive(Debug, Clone)]
struct ChargerCall {
    charge_point_id: String,
    action: &'static str,
    payload: Value,
}

/// The outcome of [`Sessions::transition`].
struct Transition {
    before: SessionState,
    after: SessionState,
}

/// Stop `transaction_id` on `charge_point_id` (see [`requests::remote_stop`]).
fn remote_stop(protocol: OcppVersion, charge_point_id: &str, transaction_id: &str) -> ChargerCall {
    let ChargerRequest { action, payload } = requests::remote_stop(protocol, transaction_id);
    ChargerCall { charge_point_id: charge_point_id.to_owned(), action, payload }
}

/// The remote stop to send with a stop decided on `before`: only while it is
/// charging on an OCPP charger.
fn stop_call_while_charging(protocol: Option<OcppVersion>, before: &SessionState) -> Option<ChargerCall> {
    let protocol = protocol?;
    let started = before.started.as_ref()?;
    if before.status != SessionStatus::Charging || started.kind != SessionKind::Ocpp {
        return None;
    }
    Some(remote_stop(protocol, &started.charge_point_id, before.transaction_id.as_deref()?))
}

impl Sessions {
    /// A service; `queue` answers the sweep's question and `directory` a
    /// start's questions about its charger, from the read models.
    pub fn new(
        store: EventStore,
        payments: Payments,
        mailer: Option<Arc<dyn Mailer>>,
        queue: Arc<dyn SessionQueue>,
        directory: Arc<dyn ChargerDirectory>,
        config: SessionConfig,
    ) -> Self {
        Self { store, payments, mailer, queue, directory, config, clock: Clock::default() }
    }

    /// The same service (and its payment service) reading time from `clock`:
    /// the sweep's deadlines, the queues' next attempts and every time a
    /// session event carries. Tests move it instead of waiting.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.payments = self.payments.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// Now, by the service's clock, at the log's precision (microseconds).
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// The payment service.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// A session, its stream version and last hash, as the log has it.
    pub async fn load(&self, id: Uuid) -> Result<(SessionState, i64, Option<[u8; 32]>), CommandError> {
        let loaded = handler::load::<ChargeSession>(&self.store, &ChargeSession::stream_id(id)).await?;
        Ok((loaded.state, loaded.version, loaded.last_hash))
    }

    /// The session, if the company owns it.
    pub async fn get(&self, company: CompanyId, id: Uuid) -> Result<SessionState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        match &state.started {
            Some(s) if s.company_id == company.as_uuid() => Ok(state),
            _ => Err(DomainError::NotFound("charge session").into()),
        }
    }

    /// Its history (for auditors), with the payment's.
    pub async fn history(&self, company: CompanyId, id: Uuid) -> Result<Vec<RecordedEvent>, CommandError> {
        let state = self.get(company, id).await?;
        let mut events = self.store.read_stream(&ChargeSession::stream_id(id)).await?;
        if let Some(started) = &state.started {
            events.extend(
                self.store.read_stream(&domain::payment::PaymentIntent::stream_id(started.payment_intent_id)).await?,
            );
        }
        events.sort_by_key(|e| e.position);
        Ok(events)
    }

    /// Decides and appends session commands (retrying on a concurrent change).
    pub async fn apply(
        &self,
        actor: &Actor,
        id: Uuid,
        commands: &[SessionCommand],
    ) -> Result<SessionState, CommandError> {
        Ok(self.transition(actor, id, |_| commands.to_vec(), |_| None).await?.after)
    }

    async fn protocol_of(&self, charge_point_id: &str) -> Result<OcppVersion, StoreError> {
        lookup::protocol_of(&self.store, charge_point_id).await
    }

    /// Decides `commands` on the session through the one command path; when
    /// `charger` asks for a charger command given the state the commands were
    /// decided on, its request is appended in the same transaction, so a
    /// concurrent path that loses the race sends nothing.
    async fn transition(
        &self,
        actor: &Actor,
        id: Uuid,
        commands: impl Fn(Uuid) -> Vec<SessionCommand>,
        charger: impl Fn(&SessionState) -> Option<ChargerCall>,
    ) -> Result<Transition, CommandError> {
        let session = ChargeSession::stream_id(id);
        // The charger command's id (and stream) is fixed before deciding: an
        // attempt that loses a race appends nothing, so the next may reuse it.
        let command_id = Uuid::now_v7();
        let command_stream = domain::charger::command::command_stream_id(command_id);
        let commands = commands(command_id);
        let streams = vec![Stream::of::<ChargeSession>(&session), Stream::new_record(&command_stream)];
        let ran = decision::run(
            &self.store,
            &actor.context(None),
            command_type(&commands),
            streams,
            |d| {
                let before = d.state::<ChargeSession>(&session)?.clone();
                d.decide_all::<ChargeSession>(&session, commands.iter().cloned())?;
                if d.is_empty() {
                    return Ok(Transition { after: before.clone(), before });
                }
                if let Some(call) = charger(&before) {
                    d.record(&command_stream, &[self.command_request(command_id, &call)])?;
                }
                Ok(Transition { before, after: d.state::<ChargeSession>(&session)?.clone() })
            },
            |t| json!({ "status": t.after.status.as_str() }),
        )
        .await?;
        match ran {
            Ran::Decided { value, .. } => Ok(value),
            // Only a caller-given command id replays; these are always fresh.
            Ran::Replayed(_) => {
                let (state, _, _) = self.load(id).await?;
                Ok(Transition { before: state.clone(), after: state })
            }
        }
    }

    fn command_request(&self, command_id: Uuid, call: &ChargerCall) -> OcppCommandEvent {
        OcppCommandEvent::Requested(OcppCommandRequested {
            command_id,
            charge_point_id: call.charge_point_id.clone(),
            action: call.action.into(),
            payload: call.payload.clone(),
            deliver_on_reconnect: false,
            timeout_ms: self.config.command_timeout_ms,
            requested_at: self.now(),
        })
    }
}
