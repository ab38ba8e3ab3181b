//! The payment service, the session service and the session manager against
//! the real event log (Postgres), with every other port faked in process: a
//! scripted payment gateway, a mailer, the sweep's queue and the charger
//! directory. Each test reads as given (events already in the log), when (one
//! service call), then (exactly the events appended, and/or the typed refusal).
#![allow(clippy::unwrap_used)]

mod support;

use std::{sync::Arc, time::Duration};

use chargeledger_commands::{
    clock::Clock,
    payments::{Actor, AuthorizeInput, NewIntent, Payments},
    sessions::{ChargerSnapshot, SessionConfig, Sessions, StartInput},
    CommandError, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamWrite,
};
use chrono::{DateTime, SubsecRound, Utc};
use domain::{
    charger::{ChargerEvent, TransactionEnded, TransactionStarted},
    payment::{Customer, IntentState, IntentStatus, PaymentMethod},
    session::{SessionKind, SessionState, SessionStatus},
    terminal::OcppVersion,
    CompanyId, DomainError,
};
use fakes::*;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

#[path = "services/fakes.rs"]
mod fakes;
#[path = "services/manager.rs"]
mod manager;
#[path = "services/payments.rs"]
mod payments;
#[path = "services/sessions.rs"]
mod sessions;

/// The one company every test acts for.
const COMPANY: CompanyId = CompanyId(Uuid::from_u128(0xC0FFEE));
/// The charger the sessions run on.
const CHARGER: &str = "EVSE-001";

fn actor() -> Actor {
    Actor { company: COMPANY, actor: "user:operator".into(), correlation: Uuid::now_v7() }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn card() -> AuthorizeInput {
    AuthorizeInput { card_token: Some("tok_ok".into()), network_token: None }
}

/// A connected charger whose connector 1 last reported `status`.
fn charger(status: &str, connected: bool) -> ChargerSnapshot {
    ChargerSnapshot {
        registered_connectors: vec![1, 2],
        connector_status: Some(status.into()),
        connected,
        protocol: Some(OcppVersion::V16),
    }
}

/// A card-paid OCPP start on connector 1 of [`CHARGER`]: 50.00 held, R$ 1.50
/// per kWh and R$ 2.00 per session.
fn start_input() -> StartInput {
    StartInput {
        kind: SessionKind::Ocpp,
        station_id: 10,
        charge_point_id: Some(CHARGER.into()),
        connector_id: 1,
        connected_here: false,
        method: Ok(PaymentMethod::CreditCard),
        amount: 5000,
        email: "driver@company.com".into(),
        cpf: Some("52998224725".into()),
        card_token: Some("tok_ok".into()),
        network_token: None,
        customer_id: None,
        price_per_kwh: Ok(Decimal::new(15, 1)),
        fixed_connection_cost: Ok(Decimal::new(2, 0)),
    }
}

/// The services over one test database, with their fakes.
struct World {
    store: EventStore,
    gateway: Arc<FakeGateway>,
    mailer: Arc<FakeMailer>,
    queue: Arc<FakeQueue>,
    directory: Arc<FakeDirectory>,
    payments: Payments,
    sessions: Sessions,
    /// The services' clock: a test moves it instead of waiting.
    clock: Clock,
}

fn world(pool: PgPool) -> World {
    world_with(pool, SessionConfig { retry_schedule: vec![Duration::from_secs(5); 3], ..SessionConfig::default() })
}

fn world_with(pool: PgPool, config: SessionConfig) -> World {
    let store = EventStore::new(pool);
    let gateway = Arc::new(FakeGateway::default());
    let mailer = Arc::new(FakeMailer::default());
    let queue = Arc::new(FakeQueue::default());
    let directory = Arc::new(FakeDirectory::default());
    directory.answer(Some(charger("Available", true)));
    let clock = Clock::default();
    let payments = Payments::new(store.clone(), gateway.clone(), 900).with_clock(clock.clone());
    let sessions =
        Sessions::new(store.clone(), payments.clone(), Some(mailer.clone()), queue.clone(), directory.clone(), config)
            .with_clock(clock.clone());
    World { store, gateway, mailer, queue, directory, payments, sessions, clock }
}

/// The event types of `events`, in order.
fn types(events: &[RecordedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// The payload of the first event of type `event_type`.
fn payload<'a>(events: &'a [RecordedEvent], event_type: &str) -> &'a Value {
    &events.iter().find(|e| e.event_type == event_type).unwrap_or_else(|| panic!("no {event_type}")).payload
}

/// The writer transaction of an event (position = transaction id << 16 + index).
fn transaction(event: &RecordedEvent) -> i64 {
    event.position >> 16
}

impl World {
    /// Where the log ends now: what a `then` compares against.
    async fn mark(&self) -> i64 {
        sqlx::query_scalar("SELECT COALESCE(max(position), 0) FROM events").fetch_one(self.store.pool()).await.unwrap()
    }

    /// Every event appended after `mark`, in log order.
    async fn since(&self, mark: i64) -> Vec<RecordedEvent> {
        let mut events = Vec::new();
        for stream in self.streams_after(mark).await {
            events.extend(self.store.read_stream(&stream).await.unwrap().into_iter().filter(|e| e.position > mark));
        }
        events.sort_by_key(|e| e.position);
        events
    }

    async fn streams_after(&self, mark: i64) -> Vec<String> {
        sqlx::query_scalar("SELECT DISTINCT stream_id FROM events WHERE position > $1")
            .bind(mark)
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }

    /// The event types appended after `mark`, in log order.
    async fn appended(&self, mark: i64) -> Vec<String> {
        self.since(mark).await.into_iter().map(|e| e.event_type).collect()
    }

    async fn commands_logged(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM command_log").fetch_one(self.store.pool()).await.unwrap()
    }

    async fn intent_stream(&self, id: Uuid) -> Vec<RecordedEvent> {
        self.store.read_stream(&format!("payment_intent-{id}")).await.unwrap()
    }

    async fn session_stream(&self, id: Uuid) -> Vec<RecordedEvent> {
        self.store.read_stream(&format!("charge_session-{id}")).await.unwrap()
    }

    /// Every event on an `ocpp_command-*` stream, in log order.
    async fn charger_commands(&self) -> Vec<RecordedEvent> {
        let mut events = Vec::new();
        for stream in self.streams_after(0).await.into_iter().filter(|s| s.starts_with("ocpp_command-")) {
            events.extend(self.store.read_stream(&stream).await.unwrap());
        }
        events.sort_by_key(|e| e.position);
        events
    }

    async fn intent(&self, id: Uuid) -> IntentState {
        self.payments.get(COMPANY, id).await.unwrap()
    }

    async fn session(&self, id: Uuid) -> SessionState {
        self.sessions.get(COMPANY, id).await.unwrap()
    }

    /// A created intent of `amount` cents paid by `method`.
    async fn intent_of(&self, method: PaymentMethod, amount: i64, customer: Option<&str>) -> Uuid {
        let customer = Customer {
            customer_id: customer.map(str::to_owned),
            email: Some("ana@example.com".into()),
            ..Customer::default()
        };
        let new = NewIntent { amount, method, customer, description: None, top_up_wallet: None };
        self.payments.create(&actor(), new).await.unwrap().0
    }

    /// A card intent of `amount` cents, authorized (held).
    async fn authorized_card(&self, amount: i64) -> Uuid {
        let id = self.intent_of(PaymentMethod::CreditCard, amount, None).await;
        let state = self.payments.authorize(&actor(), id, card()).await.unwrap();
        assert_eq!(state.status(), IntentStatus::RequiresCapture);
        id
    }

    /// A card top-up of `amount` cents to `customer`'s wallet, collected.
    async fn top_up(&self, customer: &str, amount: i64) -> Uuid {
        let (id, state) =
            self.payments.top_up(&actor(), customer, amount, PaymentMethod::CreditCard, card()).await.unwrap();
        assert_eq!(state.status(), IntentStatus::Succeeded);
        id
    }

    /// (balance, held) of `customer`'s wallet.
    async fn wallet(&self, customer: &str) -> (i64, i64) {
        let (w, _, _) = self.payments.wallet(COMPANY, customer).await.unwrap();
        (w.balance, w.holds.values().sum())
    }

    /// An OCPP session on [`CHARGER`], authorized and asked to start.
    async fn started_session(&self) -> (Uuid, SessionState) {
        let (id, state, _) = self.sessions.start(&actor(), start_input()).await.unwrap();
        assert_eq!((state.status, state.remote_start.is_some()), (SessionStatus::Authorized, true));
        (id, state)
    }

    /// A session charging in transaction `42` on [`CHARGER`] (meter at 1000 Wh).
    async fn charging_session(&self) -> (Uuid, SessionState) {
        let (id, state) = self.started_session().await;
        self.charger_did(ChargerEvent::TransactionStarted(transaction_started(&state, 1))).await;
        self.react().await;
        let state = self.session(id).await;
        assert_eq!(state.status, SessionStatus::Charging);
        (id, state)
    }

    /// `event` on [`CHARGER`]'s stream, as the OCPP gateway records it.
    async fn charger_did(&self, event: ChargerEvent) -> RecordedEvent {
        let metadata = Metadata {
            company_id: Some(COMPANY.as_uuid()),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: format!("charger:{CHARGER}"),
            command_id: None,
        };
        let write = StreamWrite {
            stream_id: format!("charger-{CHARGER}"),
            expected: ExpectedVersion::Any,
            prev_hash: None,
            events: vec![NewEvent::from_domain(&event)],
            metadata,
        };
        self.store.append(&[write], None).await.unwrap().remove(0)
    }

    /// The manager reacts until it has handled everything committed (the
    /// watermark may hold the newest events back for a moment, while another
    /// database's transaction ends). Returns how many events it handled.
    async fn react(&self) -> usize {
        let mut seen = 0;
        for _ in 0..2000 {
            support::settle(&self.store).await;
            seen += self.sessions.react_all().await.unwrap();
            if self.store.checkpoint(chargeledger_commands::sessions::manager::CHECKPOINT).await.unwrap()
                >= self.mark().await
            {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the manager never caught up with the log");
    }
}

/// The charger started transaction `42` for `session`'s id tag on `connector`.
fn transaction_started(session: &SessionState, connector: i64) -> TransactionStarted {
    TransactionStarted {
        transaction_id: "42".into(),
        evse_id: None,
        connector_id: Some(connector),
        id_tag: session.started.as_ref().map(|s| s.id_tag.clone()),
        meter_start_wh: Some(1000),
        remote_start_id: None,
        seq_no: None,
        started_at: now(),
    }
}

/// The charger ended transaction `42` with its meter at `meter_stop_wh`.
fn transaction_ended(meter_stop_wh: i64) -> TransactionEnded {
    TransactionEnded {
        transaction_id: "42".into(),
        meter_stop_wh: Some(meter_stop_wh),
        energy_wh: None,
        reason: Some("Remote".into()),
        seq_no: None,
        stopped_at: now(),
    }
}

/// The refusal inside a service's error.
fn refusal<T: std::fmt::Debug>(result: Result<T, CommandError>) -> DomainError {
    match result {
        Err(CommandError::Domain(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
