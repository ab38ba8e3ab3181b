//! Charge orchestration: the session service and its queues.
//!
//! The service starts sessions (pre-authorize, then remote-start the charger)
//! and stops them; [`manager`] reacts to what chargers and the payment gateway
//! do (in log order, from a checkpoint) and works the queues — settlement
//! (capture), refunds and receipts — from the session's own events, so a
//! restart loses nothing and repeats nothing.

mod lookup;
pub mod manager;
pub mod receipt;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use domain::{
    charger::command::OcppCommandRequested,
    payment::{Customer, IntentState, IntentStatus, PaymentMethod},
    session::{
        Amount, Attempt, ChargeSession, ChargingStarted, Reason, ReceiptSent, RemoteStartSent, SessionCommand,
        SessionEvent, SessionKind, SessionStarted, SessionState, SessionStatus, Settled, Tariff,
    },
    terminal::OcppVersion,
    Aggregate, CompanyId, DomainError, Money,
};
use rand::Rng;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    payments::{Actor, AuthorizeInput, NewIntent, Payments},
    store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamWrite},
    CommandError,
};

/// Sends receipts.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Sends one plain-text message with a fixed Message-ID.
    async fn send(&self, to: &str, subject: &str, body: &str, message_id: &str) -> Result<(), String>;
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

/// What `POST /charge/start` asks for.
#[derive(Debug, Clone)]
pub struct StartInput {
    /// OCPP or ad-hoc.
    pub kind: SessionKind,
    /// Station.
    pub station_id: i64,
    /// Charger.
    pub charge_point_id: String,
    /// Connector.
    pub connector_id: i64,
    /// Protocol of the charger (OCPP sessions).
    pub protocol: Option<OcppVersion>,
    /// Payment method.
    pub method: PaymentMethod,
    /// Pre-authorization, cents.
    pub amount: i64,
    /// Receipt address.
    pub email: String,
    /// CPF.
    pub cpf: Option<String>,
    /// Card token.
    pub card_token: Option<String>,
    /// Wallet payload.
    pub network_token: Option<Value>,
    /// The customer the session belongs to (a driver's `sub`), and whose
    /// wallet pays (WALLET).
    pub customer_id: Option<String>,
    /// Tariff.
    pub tariff: Tariff,
}

/// The session service.
#[derive(Clone)]
pub struct Sessions {
    store: EventStore,
    payments: Payments,
    mailer: Option<Arc<dyn Mailer>>,
    config: SessionConfig,
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

fn remote_stop(protocol: OcppVersion, charge_point_id: &str, transaction_id: &str) -> ChargerCall {
    let (action, payload) = match protocol {
        OcppVersion::V16 => match transaction_id.parse::<i64>() {
            Ok(tx) => ("RemoteStopTransaction", json!({ "transactionId": tx })),
            // A 1.6 transaction id we assigned is always an integer; anything
            // else cannot be stopped remotely, and the charger will say so.
            Err(_) => ("RemoteStopTransaction", json!({ "transactionId": -1 })),
        },
        OcppVersion::V201 => ("RequestStopTransaction", json!({ "transactionId": transaction_id })),
    };
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

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Sessions {
    /// A service.
    pub fn new(store: EventStore, payments: Payments, mailer: Option<Arc<dyn Mailer>>, config: SessionConfig) -> Self {
        Self { store, payments, mailer, config }
    }

    /// The payment service.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// A session and its stream tip.
    pub async fn load(&self, id: Uuid) -> Result<(SessionState, i64, Option<[u8; 32]>), CommandError> {
        let recorded = self.store.read_stream(&ChargeSession::stream_id(id)).await?;
        let mut state = SessionState::default();
        for r in &recorded {
            state = ChargeSession::evolve(state, &r.decode::<SessionEvent>()?);
        }
        Ok((state, recorded.last().map_or(0, |r| r.stream_version), recorded.last().map(RecordedEvent::hash_array)))
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

    /// Starts a session: the payment is created and authorized; once it is,
    /// the charger is told to start (OCPP sessions).
    pub async fn start(
        &self,
        actor: &Actor,
        input: StartInput,
    ) -> Result<(Uuid, SessionState, IntentState), CommandError> {
        let session_id = Uuid::now_v7();
        let id_tag = format!("CL{}", &session_id.simple().to_string()[14..32]);
        let customer = Customer {
            customer_id: input.customer_id.clone(),
            name: None,
            email: Some(input.email.clone()),
            cpf: input.cpf.clone(),
        };
        let started = SessionStarted {
            session_id,
            company_id: actor.company.as_uuid(),
            kind: input.kind,
            station_id: input.station_id,
            charge_point_id: input.charge_point_id.clone(),
            connector_id: input.connector_id,
            method: input.method,
            preauth_amount: input.amount,
            email: input.email.clone(),
            cpf: input.cpf.clone(),
            tariff: input.tariff.clone(),
            payment_intent_id: Uuid::nil(),
            id_tag,
            at: now(),
            customer_id: input.customer_id.clone(),
        };
        // Validate the session before any money moves.
        ChargeSession::decide(&SessionState::default(), SessionCommand::Start(started.clone()))?;
        let new = NewIntent {
            amount: input.amount,
            method: input.method,
            customer,
            description: Some(format!(
                "charging at station {} ({} connector {})",
                input.station_id, input.charge_point_id, input.connector_id
            )),
            top_up_wallet: None,
        };
        let (intent_id, _) = self.payments.create(actor, new).await?;
        let started = SessionStarted { payment_intent_id: intent_id, ..started };
        self.apply(actor, session_id, &[SessionCommand::Start(started)]).await?;
        let authorized = self
            .payments
            .authorize(
                actor,
                intent_id,
                AuthorizeInput { card_token: input.card_token, network_token: input.network_token },
            )
            .await;
        let intent = match authorized {
            Ok(intent) => intent,
            Err(CommandError::Domain(e)) => {
                // A refusal of the payment details: the session fails, nothing is sent to the charger.
                let failed = Reason { code: "payment_refused".into(), detail: e.to_string(), at: now() };
                self.apply(actor, session_id, &[SessionCommand::PaymentFailed(failed)]).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        let state = self.on_payment(actor, session_id, &intent, input.protocol).await?;
        Ok((session_id, state, intent))
    }

    /// Moves a session on from its payment's state.
    pub async fn on_payment(
        &self,
        actor: &Actor,
        id: Uuid,
        intent: &IntentState,
        protocol: Option<OcppVersion>,
    ) -> Result<SessionState, CommandError> {
        let (state, _, _) = self.load(id).await?;
        if state.status != SessionStatus::Preauthorizing {
            return Ok(state);
        }
        match intent.status() {
            IntentStatus::RequiresCapture => {
                let amount = intent.capturable.to_cents().unwrap_or_default();
                let state = self.apply(actor, id, &[SessionCommand::PaymentAuthorized { amount, at: now() }]).await?;
                self.send_remote_start(actor, id, &state, protocol).await
            }
            IntentStatus::Failed | IntentStatus::Expired | IntentStatus::Canceled => {
                let failure = intent.failure.as_ref();
                let reason = Reason {
                    code: failure.map_or_else(|| intent.status().as_str().to_owned(), |f| f.code.clone()),
                    detail: failure
                        .map_or_else(|| format!("the payment is {}", intent.status().as_str()), |f| f.reason.clone()),
                    at: now(),
                };
                self.apply(actor, id, &[SessionCommand::PaymentFailed(reason)]).await
            }
            _ => Ok(state), // still processing (PIX waiting, or unknown): the manager moves it on later
        }
    }

    async fn protocol_of(&self, charge_point_id: &str) -> Result<OcppVersion, StoreError> {
        lookup::protocol_of(&self.store, charge_point_id).await
    }

    /// Decides `commands` on the session and appends the events; when
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
        for _ in 0..5 {
            let command_id = Uuid::now_v7();
            let (before, version, hash) = self.load(id).await?;
            let mut state = before.clone();
            let mut events = Vec::new();
            for command in commands(command_id) {
                let decided = ChargeSession::decide(&state, command)?;
                state = decided.iter().fold(state, ChargeSession::evolve);
                events.extend(decided);
            }
            if events.is_empty() {
                return Ok(Transition { before, after: state });
            }
            let metadata = actor.metadata();
            let mut writes = vec![StreamWrite {
                stream_id: ChargeSession::stream_id(id),
                expected: ExpectedVersion::Exact(version),
                prev_hash: hash,
                events: events.iter().map(NewEvent::from_domain).collect(),
                metadata: metadata.clone(),
            }];
            let call = charger(&before);
            if let Some(call) = &call {
                writes.push(self.command_write(command_id, call, metadata));
            }
            match self.store.append(&writes, None).await {
                Ok(_) => return Ok(Transition { before, after: state }),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::TooMuchContention(ChargeSession::stream_id(id)))
    }

    fn command_write(&self, command_id: Uuid, call: &ChargerCall, metadata: crate::store::Metadata) -> StreamWrite {
        let request = OcppCommandRequested {
            command_id,
            charge_point_id: call.charge_point_id.clone(),
            action: call.action.into(),
            payload: call.payload.clone(),
            deliver_on_reconnect: false,
            timeout_ms: self.config.command_timeout_ms,
            requested_at: now(),
        };
        StreamWrite {
            stream_id: domain::charger::command::command_stream_id(command_id),
            expected: ExpectedVersion::NoStream,
            prev_hash: None,
            events: vec![NewEvent::from_domain(&domain::charger::command::OcppCommandEvent::Requested(request))],
            metadata,
        }
    }

    /// Asks a charger for something outside any session transition (stopping
    /// a transaction that belongs to no live session).
    async fn request_command(&self, actor: &Actor, call: &ChargerCall) -> Result<(), CommandError> {
        let metadata = actor.metadata();
        self.store.append(&[self.command_write(Uuid::now_v7(), call, metadata)], None).await?;
        Ok(())
    }

    async fn send_remote_start(
        &self,
        actor: &Actor,
        id: Uuid,
        state: &SessionState,
        protocol: Option<OcppVersion>,
    ) -> Result<SessionState, CommandError> {
        let Some(started) = state.started.clone() else { return Ok(state.clone()) };
        if started.kind == SessionKind::Adhoc
            || state.remote_start.is_some()
            || state.status != SessionStatus::Authorized
        {
            return Ok(state.clone());
        }
        let protocol = match protocol {
            Some(p) => p,
            None => self.protocol_of(&started.charge_point_id).await?,
        };
        let (action, payload) = match protocol {
            OcppVersion::V16 => {
                ("RemoteStartTransaction", json!({"connectorId": started.connector_id, "idTag": started.id_tag}))
            }
            OcppVersion::V201 => (
                "RequestStartTransaction",
                json!({"evseId": started.connector_id, "idToken": {"idToken": started.id_tag, "type": "Central"},
                       "remoteStartId": (Utc::now().timestamp_millis() / 100) % i64::from(i32::MAX)}),
            ),
        };
        let call = ChargerCall { charge_point_id: started.charge_point_id.clone(), action, payload };
        let sent = |command_id| vec![SessionCommand::RemoteStartSent(RemoteStartSent { command_id, at: now() })];
        Ok(self.transition(actor, id, sent, |_| Some(call.clone())).await?.after)
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
        let reason = Reason { code: code.into(), detail: detail.into(), at: now() };
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
    async fn release_payment(&self, actor: &Actor, state: &SessionState) -> Result<(), CommandError> {
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

    async fn queue_refund(
        &self,
        actor: &Actor,
        id: Uuid,
        amount: i64,
        reason: &str,
    ) -> Result<SessionState, CommandError> {
        let request = SessionCommand::RequestRefund(Amount { amount, reason: Some(reason.into()), at: now() });
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

    fn next_attempt(&self, attempt: u32) -> Option<DateTime<Utc>> {
        let delay = self.config.retry_schedule.get(attempt as usize - 1)?;
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        Some(now() + chrono::Duration::from_std(delay.mul_f64(jitter)).unwrap_or_default())
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
                    Settled { captured_cents: captured, released_cents: state.authorized - captured, at: now() };
                self.apply(actor, id, &[SessionCommand::Settled(settled)]).await
            }
            other => self.settlement_failed(actor, id, &state, &format!("the payment is {}", other.as_str())).await,
        }
    }

    async fn settlement_failed(
        &self,
        actor: &Actor,
        id: Uuid,
        state: &SessionState,
        reason: &str,
    ) -> Result<SessionState, CommandError> {
        let attempt = state.settlement_attempts + 1;
        // Settlement is never abandoned: after the schedule, retry at its longest delay.
        let next = self.next_attempt(attempt).or_else(|| self.next_attempt(self.config.retry_schedule.len() as u32));
        let failed = Attempt { attempt, reason: reason.into(), next_attempt_at: next, at: now() };
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
            return self.apply(actor, id, &[SessionCommand::Refunded { at: now() }]).await;
        }
        let reason = match result {
            Ok(i) => format!("the refund's outcome is unknown (payment {})", i.status().as_str()),
            Err(e) => e.to_string(),
        };
        let attempt = state.refund_attempts + 1;
        let failed = Attempt { attempt, reason, next_attempt_at: self.next_attempt(attempt), at: now() };
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
                let sent = ReceiptSent { to: receipt.to.clone(), message_id, at: now() };
                self.apply(actor, id, &[SessionCommand::ReceiptSent(sent)]).await
            }
            Err(reason) => {
                let attempt = state.receipt_attempts + 1;
                let next =
                    self.next_attempt(attempt).or_else(|| self.next_attempt(self.config.retry_schedule.len() as u32));
                let failed = Attempt { attempt, reason, next_attempt_at: next, at: now() };
                self.apply(actor, id, &[SessionCommand::ReceiptFailed(failed)]).await
            }
        };
        lock.rollback().await.map_err(StoreError::Database)?;
        outcome
    }

    /// Ad-hoc progress: energy delivered so far, reported by the caller.
    pub async fn progress(
        &self,
        actor: &Actor,
        id: Uuid,
        energy_wh: i64,
        at: DateTime<Utc>,
    ) -> Result<SessionState, CommandError> {
        let state = self.get(actor.company, id).await?;
        if energy_wh < 0 {
            return Err(DomainError::field("energyWh", "must not be negative").into());
        }
        let commands = match state.status {
            SessionStatus::Authorized => vec![
                SessionCommand::ChargingStarted(ChargingStarted {
                    transaction_id: format!("adhoc-{id}"),
                    meter_start_wh: 0,
                    at,
                }),
                SessionCommand::Progress { energy_wh, at },
            ],
            SessionStatus::Charging | SessionStatus::Stopping => vec![SessionCommand::Progress { energy_wh, at }],
            other => return Err(DomainError::InvalidState(format!("the session is {}", other.as_str())).into()),
        };
        self.apply(actor, id, &commands).await
    }

    /// Ad-hoc completion: the final energy; then settle.
    pub async fn complete(
        &self,
        actor: &Actor,
        id: Uuid,
        energy_wh: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<SessionState, CommandError> {
        let state = self.get(actor.company, id).await?;
        let energy = energy_wh.unwrap_or(state.energy_wh);
        let commands = match state.status {
            SessionStatus::Authorized => vec![
                SessionCommand::ChargingStarted(ChargingStarted {
                    transaction_id: format!("adhoc-{id}"),
                    meter_start_wh: 0,
                    at,
                }),
                SessionCommand::ChargingStopped { energy_wh: energy, at },
            ],
            SessionStatus::Charging | SessionStatus::Stopping => {
                vec![SessionCommand::ChargingStopped { energy_wh: energy, at }]
            }
            SessionStatus::Settling | SessionStatus::Completed => vec![],
            other => return Err(DomainError::InvalidState(format!("the session is {}", other.as_str())).into()),
        };
        self.apply(actor, id, &commands).await?;
        self.settle(actor, id).await
    }
}
