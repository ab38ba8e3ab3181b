//! In-process fakes of the services' ports: a payment gateway that records
//! every call and answers scripted outcomes, a mailer, the sweep's queue and
//! the charger directory answering scripted rows.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use async_trait::async_trait;
use chargeledger_commands::{
    payments::port::{AuthorizeRequest, Called, ChargeSnapshot, ChargeStatus, Exchange, GatewayError, PaymentGateway},
    sessions::{
        ChargerDirectory, ChargerSnapshot, DueQuery, DueSession, MailError, Mailer, ReadModelError, SessionQueue,
    },
};
use chrono::{SubsecRound, Utc};
use domain::{CompanyId, TerminalId};
use serde_json::json;
use uuid::Uuid;

/// A gateway operation, as [`FakeGateway`] scripts and records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Authorize,
    Capture,
    Cancel,
    Find,
}

/// A call the services made to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Authorize { intent: Uuid, amount: i64, key: String },
    Capture { charge: String, amount: i64, key: String },
    Cancel { charge: String, amount: Option<i64>, key: String },
    Fetch { charge: String },
    Find { code: String },
}

/// How the gateway answers the next call of an operation.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Does what was asked.
    Done,
    /// The issuer declines, with this acquirer code.
    Declined(&'static str),
    /// No answer in time; the gateway did nothing.
    Timeout,
    /// The gateway did it, but its answer was lost on the way back.
    ReplyLost,
}

/// A payment gateway that records calls and answers scripted outcomes
/// (everything is [`Answer::Done`] unless scripted otherwise).
#[derive(Debug, Default)]
pub struct FakeGateway {
    calls: Mutex<Vec<Call>>,
    script: Mutex<HashMap<Op, VecDeque<Answer>>>,
    /// Charges by charge id, and charge ids by order code (our intent id).
    charges: Mutex<HashMap<String, ChargeSnapshot>>,
    codes: Mutex<HashMap<String, String>>,
}

impl FakeGateway {
    /// The next call of `op` gets `answer`.
    pub fn next(&self, op: Op, answer: Answer) {
        self.script.lock().unwrap().entry(op).or_default().push_back(answer);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn answer(&self, op: Op, call: Call) -> Answer {
        self.calls.lock().unwrap().push(call);
        self.script.lock().unwrap().get_mut(&op).and_then(VecDeque::pop_front).unwrap_or(Answer::Done)
    }

    fn charge(&self, id: &str) -> Option<ChargeSnapshot> {
        self.charges.lock().unwrap().get(id).cloned()
    }

    fn store(&self, snapshot: &ChargeSnapshot) {
        self.charges.lock().unwrap().insert(snapshot.charge_id.clone(), snapshot.clone());
    }

    /// What the answer does to `snapshot` (the gateway's side), and what the
    /// caller hears, with the one exchange that carried it.
    fn respond(
        &self,
        request_line: String,
        key: Option<&str>,
        answer: Answer,
        snapshot: Option<ChargeSnapshot>,
    ) -> Called<ChargeSnapshot> {
        let (result, status, outcome) = match (answer, snapshot) {
            (Answer::Declined(code), _) => {
                let message = "Transação recusada pelo emissor".to_owned();
                (Err(GatewayError::Declined { code: Some(code.into()), message }), Some(200), "declined")
            }
            (Answer::Timeout, _) => (Err(GatewayError::Unknown("timed out after 800 ms".into())), None, "timeout"),
            (Answer::ReplyLost, Some(done)) => {
                self.store(&done);
                (Err(GatewayError::Unknown("connection reset after the request".into())), None, "timeout")
            }
            (Answer::Done, Some(done)) => {
                self.store(&done);
                (Ok(done), Some(200), "ok")
            }
            (_, None) => {
                (Err(GatewayError::Rejected { status: 404, message: "no such charge".into() }), Some(404), "error")
            }
        };
        let exchange = Exchange {
            request_line,
            idempotency_key: key.map(str::to_owned),
            request: json!({}),
            http_status: status,
            response: result
                .as_ref()
                .map_or_else(|e| json!({ "error": e.to_string() }), |s| json!({ "id": s.charge_id })),
            outcome: outcome.into(),
            duration_ms: 1,
            at: Utc::now().trunc_subsecs(6),
        };
        Called { result, exchanges: vec![exchange] }
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Called<ChargeSnapshot> {
        let key = request.idempotency_key.clone();
        let call = Call::Authorize { intent: request.intent_id, amount: request.amount, key: key.clone() };
        let answer = self.answer(Op::Authorize, call);
        let charge = format!("ch_{}", request.intent_id.simple());
        let authorized = ChargeSnapshot {
            order_id: format!("or_{}", request.intent_id.simple()),
            charge_id: charge.clone(),
            status: ChargeStatus::Authorized,
            amount: request.amount,
            paid_amount: 0,
            canceled_amount: 0,
            pix: None,
        };
        if matches!(answer, Answer::Done | Answer::ReplyLost) {
            self.codes.lock().unwrap().insert(request.intent_id.to_string(), charge);
        }
        self.respond("POST /core/v5/orders".into(), Some(&key), answer, Some(authorized))
    }

    async fn capture(&self, charge_id: &str, amount: i64, idempotency_key: &str) -> Called<ChargeSnapshot> {
        let call = Call::Capture { charge: charge_id.into(), amount, key: idempotency_key.into() };
        let answer = self.answer(Op::Capture, call);
        let paid = self.charge(charge_id).map(|c| ChargeSnapshot {
            status: ChargeStatus::Paid,
            paid_amount: amount,
            canceled_amount: c.amount - amount,
            ..c
        });
        self.respond(format!("POST /core/v5/charges/{charge_id}/capture"), Some(idempotency_key), answer, paid)
    }

    async fn cancel(&self, charge_id: &str, amount: Option<i64>, idempotency_key: &str) -> Called<ChargeSnapshot> {
        let call = Call::Cancel { charge: charge_id.into(), amount, key: idempotency_key.into() };
        let answer = self.answer(Op::Cancel, call);
        let canceled = self.charge(charge_id).map(|c| {
            let canceled = c.canceled_amount + amount.unwrap_or(c.amount - c.canceled_amount);
            let status = if canceled >= c.amount { ChargeStatus::Canceled } else { c.status.clone() };
            ChargeSnapshot { status, canceled_amount: canceled, ..c }
        });
        self.respond(format!("DELETE /core/v5/charges/{charge_id}"), Some(idempotency_key), answer, canceled)
    }

    async fn fetch_charge(&self, charge_id: &str) -> Called<ChargeSnapshot> {
        self.calls.lock().unwrap().push(Call::Fetch { charge: charge_id.into() });
        let charge = self.charge(charge_id);
        self.respond(format!("GET /core/v5/charges/{charge_id}"), None, Answer::Done, charge)
    }

    async fn find_by_code(&self, code: &str) -> Called<Option<ChargeSnapshot>> {
        let answer = self.answer(Op::Find, Call::Find { code: code.into() });
        let found = self.codes.lock().unwrap().get(code).and_then(|charge| self.charge(charge));
        let called = self.respond(format!("GET /core/v5/orders?code={code}"), None, answer, found.clone());
        match (called.result, found) {
            (Ok(snapshot), _) => Called { result: Ok(Some(snapshot)), exchanges: called.exchanges },
            // Nothing under that code: an answer, not a failure.
            (Err(GatewayError::Rejected { .. }), None) => Called { result: Ok(None), exchanges: called.exchanges },
            (Err(e), _) => Called { result: Err(e), exchanges: called.exchanges },
        }
    }
}

/// A message the mailer was asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub message_id: String,
}

/// A mailer that records messages and fails when scripted to.
#[derive(Debug, Default)]
pub struct FakeMailer {
    sent: Mutex<Vec<Mail>>,
    failures: Mutex<VecDeque<MailError>>,
}

impl FakeMailer {
    /// The next send fails with `reason`.
    pub fn fail_next(&self, reason: MailError) {
        self.failures.lock().unwrap().push_back(reason);
    }

    /// Every message asked for (failed ones included).
    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Mailer for FakeMailer {
    async fn send(&self, to: &str, subject: &str, body: &str, message_id: &str) -> Result<(), MailError> {
        let mail = Mail { to: to.into(), subject: subject.into(), body: body.into(), message_id: message_id.into() };
        self.sent.lock().unwrap().push(mail);
        self.failures.lock().unwrap().pop_front().map_or(Ok(()), Err)
    }
}

/// The sweep's queue: answers the scripted rows and records each question.
#[derive(Debug, Default)]
pub struct FakeQueue {
    due: Mutex<Vec<DueSession>>,
    asked: Mutex<Vec<DueQuery>>,
}

impl FakeQueue {
    /// From now on the queue answers these rows.
    pub fn answer(&self, rows: Vec<DueSession>) {
        *self.due.lock().unwrap() = rows;
    }

    /// The questions asked so far.
    pub fn asked(&self) -> Vec<DueQuery> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl SessionQueue for FakeQueue {
    async fn due_sessions(&self, query: DueQuery) -> Result<Vec<DueSession>, ReadModelError> {
        self.asked.lock().unwrap().push(query);
        Ok(self.due.lock().unwrap().clone())
    }
}

/// The charger directory: answers one scripted snapshot (`None`: no such
/// terminal) and records each question.
#[derive(Debug, Default)]
pub struct FakeDirectory {
    charger: Mutex<Option<ChargerSnapshot>>,
    asked: Mutex<Vec<(CompanyId, String, i64)>>,
}

impl FakeDirectory {
    /// From now on the directory answers `charger`.
    pub fn answer(&self, charger: Option<ChargerSnapshot>) {
        *self.charger.lock().unwrap() = charger;
    }

    /// The questions asked so far: (company, charge point, connector).
    pub fn asked(&self) -> Vec<(CompanyId, String, i64)> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl ChargerDirectory for FakeDirectory {
    async fn charger(
        &self,
        company: CompanyId,
        charge_point: &TerminalId,
        connector: i64,
    ) -> Result<Option<ChargerSnapshot>, ReadModelError> {
        self.asked.lock().unwrap().push((company, charge_point.as_str().to_owned(), connector));
        Ok(self.charger.lock().unwrap().clone())
    }
}
