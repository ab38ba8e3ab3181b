//! One charger connection: frames in, decisions, appends, answers; commands
//! out, one at a time; pings; and a clean record of how it ended.

mod flood;

use std::{borrow::Cow, collections::VecDeque, time::Duration};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::{DateTime, SubsecRound, Utc};
use commands::{
    store::CommandRecord, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError, StreamWrite,
};
use domain::{
    charger::{
        command::{
            command_stream_id, OcppCommandAnswered, OcppCommandEvent, OcppCommandFailed, OcppCommandRequested,
            OcppCommandSent,
        },
        Charger, ChargerCommand, ChargerEvent, ChargerState, Direction, FrameRejection, OcppFrame, OcppFrameEvent,
    },
    terminal::OcppVersion,
    Aggregate, CompanyId, TerminalId,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    frame::{self, ErrorCode, Frame},
    limits::FrameLimiter,
    messages, schema, Gateway, Outbound,
};

/// Actions whose effects must not happen twice when a charger repeats a message.
const EFFECTFUL: &[&str] = &[
    "BootNotification",
    "StatusNotification",
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "TransactionEvent",
];

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Version and hash of the last event of a stream this connection writes.
#[derive(Debug, Clone, Copy, Default)]
struct Tip {
    version: i64,
    hash: Option<[u8; 32]>,
}

impl Tip {
    fn expected(&self) -> ExpectedVersion {
        ExpectedVersion::Exact(self.version)
    }
}

/// The command in flight.
#[derive(Debug)]
struct InFlight {
    message_id: String,
    command_id: Uuid,
    action: String,
    deadline: Instant,
}

struct Conn {
    gateway: Gateway,
    store: EventStore,
    id: TerminalId,
    version: OcppVersion,
    company: Uuid,
    connection_id: Uuid,
    state: ChargerState,
    charger: Tip,
    frames: Tip,
    in_flight: Option<InFlight>,
    queue: VecDeque<OcppCommandRequested>,
    limiter: FrameLimiter,
}

/// Runs a connection to its end.
pub(super) async fn run(gateway: Gateway, id: TerminalId, version: OcppVersion, company: Uuid, mut socket: WebSocket) {
    let connection_id = Uuid::now_v7();
    let (tx, rx) = mpsc::unbounded_channel();
    let (cancel, done) = gateway.attach(id.as_str(), connection_id, tx).await;
    let store = gateway.inner.store.clone();
    let mut conn = Conn {
        gateway: gateway.clone(),
        store,
        id: id.clone(),
        version,
        company,
        connection_id,
        state: ChargerState::default(),
        charger: Tip::default(),
        frames: Tip::default(),
        in_flight: None,
        queue: VecDeque::new(),
        limiter: gateway.inner.parked.take(id.as_str(), &gateway.inner.config.limits),
    };
    match conn.open().await {
        Ok(()) => {
            tracing::info!(charger = %id, ?version, %connection_id, "charger connected");
            let reason = conn.serve(&mut socket, rx, &cancel).await;
            tracing::info!(charger = %id, %connection_id, %reason, "charger disconnected");
            conn.close(&reason).await;
        }
        Err(error) => {
            tracing::error!(charger = %id, %error, "could not record the connection; closing it");
            let _ = socket.send(close(1011, "the platform cannot record this connection now")).await;
        }
    }
    gateway.detach(id.as_str(), connection_id);
    let _ = done.send(());
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.to_owned().into() }))
}

async fn tip(store: &EventStore, stream: &str) -> Result<Tip, StoreError> {
    let row = sqlx::query(
        "SELECT stream_version, hash FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1",
    )
    .bind(stream)
    .fetch_optional(store.pool())
    .await?;
    Ok(match row {
        Some(row) => {
            let hash: Vec<u8> = row.try_get("hash")?;
            Tip { version: row.try_get("stream_version")?, hash: hash.as_slice().try_into().ok() }
        }
        None => Tip::default(),
    })
}

impl Conn {
    fn charger_stream(&self) -> String {
        Charger::stream_id(&self.id)
    }

    fn frame_stream(&self) -> String {
        Charger::frame_stream_id(&self.id)
    }

    fn metadata(&self, correlation: Uuid, causation: Option<Uuid>, command_id: Option<String>) -> Metadata {
        Metadata {
            company_id: Some(self.company),
            correlation_id: correlation,
            causation_id: causation,
            actor: format!("charger:{}", self.id),
            command_id,
        }
    }

    /// Loads the charger's state and stream tips, then records the connection.
    async fn reload(&mut self) -> Result<(), StoreError> {
        let events = self.store.read_stream(&self.charger_stream()).await?;
        let mut state = ChargerState::default();
        for e in &events {
            if let Ok(event) = e.decode::<ChargerEvent>() {
                state = Charger::evolve(state, &event);
            }
        }
        self.state = state;
        self.charger = Tip {
            version: events.last().map_or(0, |e| e.stream_version),
            hash: events.last().map(RecordedEvent::hash_array),
        };
        self.frames = tip(&self.store, &self.frame_stream()).await?;
        Ok(())
    }

    async fn open(&mut self) -> Result<(), StoreError> {
        self.reload().await?;
        let connect = ChargerCommand::Connect {
            company_id: CompanyId(self.company),
            connection_id: self.connection_id,
            protocol: self.version,
            gateway_id: self.gateway.inner.config.gateway_id,
            at: now(),
        };
        match Charger::decide(&self.state, connect) {
            Ok(effects) => self.commit(vec![], effects, vec![], None, Uuid::now_v7()).await?,
            Err(refusal) => {
                return Err(StoreError::Database(sqlx::Error::Protocol(refusal.to_string())));
            }
        }
        self.queue.extend(commands::ocpp_commands::pending_for(&self.store, self.id.as_str()).await?);
        Ok(())
    }

    async fn close(&mut self, reason: &str) {
        self.flush_rejections(true).await;
        // Before the disconnection is recorded: a reconnect finds the budget spent.
        let limiter = std::mem::replace(&mut self.limiter, FrameLimiter::new(&self.gateway.inner.config.limits));
        self.gateway.inner.parked.park(self.id.as_str(), limiter);
        if let Some(in_flight) = self.in_flight.take() {
            let failed = OcppCommandFailed {
                reason: OcppCommandFailed::DISCONNECTED.into(),
                error_code: None,
                description: Some(format!("the connection closed before the answer: {reason}")),
                failed_at: now(),
            };
            let write = self.command_write(in_flight.command_id, 2, OcppCommandEvent::Failed(failed), Uuid::now_v7());
            let _ = self.commit(vec![], vec![], vec![write], None, Uuid::now_v7()).await;
        }
        let disconnect =
            ChargerCommand::Disconnect { connection_id: self.connection_id, reason: reason.to_owned(), at: now() };
        for _ in 0..3 {
            let effects = Charger::decide(&self.state, disconnect.clone()).unwrap_or_default();
            match self.commit(vec![], effects, vec![], None, Uuid::now_v7()).await {
                Err(StoreError::Conflict { .. }) => {
                    if self.reload().await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::error!(charger = %self.id, %error, "could not record the disconnection");
                    break;
                }
                Ok(()) => break,
            }
        }
    }

    /// A frame event. Every text in it goes through [`frame::storable`], so a
    /// frame holding NUL is recorded (escaped) instead of failing the append.
    fn frame(
        &self,
        direction: Direction,
        frame_type: Option<i64>,
        message_id: Option<String>,
        action: Option<String>,
        raw: String,
    ) -> OcppFrame {
        let text = |s: String| match frame::storable(&s) {
            Cow::Borrowed(_) => s,
            Cow::Owned(escaped) => escaped,
        };
        OcppFrame {
            connection_id: self.connection_id,
            protocol: self.version,
            direction,
            message_type_id: frame_type,
            message_id: message_id.map(text),
            action: action.map(text),
            raw: text(raw),
            rejection: None,
            at: now(),
        }
    }

    /// Commits, and once more after reloading the tips when the first attempt
    /// failed (a replaced connection may have moved them).
    async fn commit_or_retry(
        &mut self,
        frames: Vec<OcppFrameEvent>,
        extra: Vec<StreamWrite>,
        what: &str,
    ) -> Result<(), StoreError> {
        match self.commit(frames.clone(), vec![], extra.clone(), None, Uuid::now_v7()).await {
            Ok(()) => Ok(()),
            Err(first) => {
                tracing::warn!(charger = %self.id, error = %first, "could not record {what}; retrying");
                self.reload().await?;
                self.commit(frames, vec![], extra, None, Uuid::now_v7()).await
            }
        }
    }

    fn command_write(
        &self,
        command_id: Uuid,
        expected: i64,
        event: OcppCommandEvent,
        correlation: Uuid,
    ) -> StreamWrite {
        StreamWrite {
            stream_id: command_stream_id(command_id),
            expected: ExpectedVersion::Exact(expected),
            prev_hash: None,
            events: vec![NewEvent::from_domain(&event)],
            metadata: self.metadata(correlation, None, None),
        }
    }

    /// The received CALL and our CALLRESULT, as frame events.
    fn exchange(&self, id: &str, action: &str, raw: &str, reply: &Frame) -> Vec<OcppFrameEvent> {
        let (id, action) = (Some(id.to_owned()), Some(action.to_owned()));
        vec![
            OcppFrameEvent::Received(self.frame(Direction::In, Some(2), id.clone(), action.clone(), raw.to_owned())),
            OcppFrameEvent::Sent(self.frame(Direction::Out, Some(reply.type_id()), id, action, reply.to_text())),
        ]
    }

    /// Appends frames, effects and other writes in one transaction, then moves
    /// the tips and the state. `frames[0]`'s event id is the correlation and the
    /// causation of the effects.
    async fn commit(
        &mut self,
        frames: Vec<OcppFrameEvent>,
        effects: Vec<ChargerEvent>,
        extra: Vec<StreamWrite>,
        command: Option<CommandRecord>,
        correlation: Uuid,
    ) -> Result<(), StoreError> {
        let frame_events: Vec<NewEvent> = frames.iter().map(NewEvent::from_domain).collect();
        let cause = frame_events.first().map(|e| e.event_id);
        let correlation = cause.unwrap_or(correlation);
        let mut writes = Vec::new();
        if !frame_events.is_empty() {
            writes.push(StreamWrite {
                stream_id: self.frame_stream(),
                expected: self.frames.expected(),
                prev_hash: self.frames.hash,
                events: frame_events,
                metadata: self.metadata(correlation, None, None),
            });
        }
        if !effects.is_empty() {
            writes.push(StreamWrite {
                stream_id: self.charger_stream(),
                expected: self.charger.expected(),
                prev_hash: self.charger.hash,
                events: effects.iter().map(NewEvent::from_domain).collect(),
                metadata: self.metadata(correlation, cause, command.as_ref().map(|c| c.command_id.clone())),
            });
        }
        writes.extend(extra);
        if writes.is_empty() {
            return Ok(());
        }
        // One transaction for every stream (restarted by the store when the
        // global order requires it).
        let recorded = self.store.append(&writes, command.as_ref()).await?;
        for r in &recorded {
            let tip = Tip { version: r.stream_version, hash: Some(r.hash_array()) };
            if r.stream_id == self.frame_stream() {
                self.frames = tip;
            } else if r.stream_id == self.charger_stream() {
                self.charger = tip;
            }
        }
        for effect in &effects {
            self.state = Charger::evolve(std::mem::take(&mut self.state), effect);
        }
        Ok(())
    }

    async fn serve(
        &mut self,
        socket: &mut WebSocket,
        mut outbound: mpsc::UnboundedReceiver<Outbound>,
        cancel: &CancellationToken,
    ) -> String {
        let interval = self.gateway.inner.config.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
        let mut last_heard = Instant::now();
        loop {
            if self.in_flight.is_none() && !self.queue.is_empty() {
                if let Err(reason) = self.send_next(socket).await {
                    return reason;
                }
            }
            let deadline = self.in_flight.as_ref().map(|f| f.deadline);
            tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = socket.send(close(1001, "replaced by a new connection or gateway shutdown")).await;
                    return "closed by the gateway (replaced by a new connection, or shutdown)".into();
                }
                message = socket.recv() => match message {
                    None => return "closed by the charger".into(),
                    Some(Err(error)) => {
                        let text = error.to_string();
                        if text.contains("too long") || text.contains("Space limit") {
                            let max = self.gateway.inner.config.max_frame_bytes;
                            let _ = socket.send(close(1009, &format!("frame larger than {max} bytes"))).await;
                            return format!("frame too large: {text}");
                        }
                        return format!("connection error: {text}");
                    }
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        match self.admit(socket, text.as_str()).await {
                            Err(reason) => return reason,
                            Ok(false) => continue,
                            Ok(true) => {}
                        }
                        if let Err(reason) = self.on_text(socket, text.to_string()).await {
                            return reason;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        last_heard = Instant::now();
                        let raw = String::from_utf8_lossy(&bytes).into_owned();
                        match self.admit(socket, &raw).await {
                            Err(reason) => return reason,
                            Ok(false) => continue,
                            Ok(true) => {}
                        }
                        let error = frame::FrameError { id: None, type_id: None, action: None, code: ErrorCode::FormatViolation, description: "OCPP-J frames are text, not binary".into() };
                        if let Err(reason) = self.reject(socket, raw, error).await {
                            return reason;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = Instant::now(),
                    Some(Ok(Message::Close(_))) => return "closed by the charger".into(),
                },
                Some(out) = outbound.recv() => {
                    if !self.queue.iter().any(|q| q.command_id == out.request.command_id) {
                        self.queue.push_back(out.request);
                    }
                }
                _ = ping.tick() => {
                    self.flush_rejections(false).await;
                    if last_heard.elapsed() > interval * 2 {
                        let _ = socket.send(close(1001, "no answer to pings")).await;
                        return "ping timeout".into();
                    }
                    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return "connection lost".into();
                    }
                }
                _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } }, if deadline.is_some() => {
                    self.time_out().await;
                }
            }
        }
    }

    async fn send(&self, socket: &mut WebSocket, text: String) -> Result<(), String> {
        socket.send(Message::Text(text.into())).await.map_err(|e| format!("send failed: {e}"))
    }

    /// Records a refused frame and its CALLERROR, then sends the CALLERROR.
    /// What cannot be recorded is not answered: the connection is closed
    /// (1011) and the charger retries after reconnecting.
    async fn reject(&mut self, socket: &mut WebSocket, raw: String, error: frame::FrameError) -> Result<(), String> {
        let code = error.code.as_str(self.version).to_owned();
        let mut description = error.description;
        if frame::needs_escaping(&raw) {
            description.push_str(frame::ESCAPED_NOTE);
        }
        let reply = Frame::CallError {
            id: error.id.clone().unwrap_or_else(|| "-1".into()),
            code: code.clone(),
            description: description.clone(),
            details: json!({}),
        };
        if !self.record_rejection(&code, raw.len()) {
            return self.send(socket, reply.to_text()).await;
        }
        let mut received = self.frame(Direction::In, error.type_id, error.id.clone(), error.action.clone(), raw);
        received.rejection = Some(FrameRejection { code, description: frame::storable(&description).into_owned() });
        let sent = self.frame(Direction::Out, Some(4), error.id, error.action, reply.to_text());
        let frames = vec![OcppFrameEvent::Received(received), OcppFrameEvent::Sent(sent)];
        self.answer_recorded(socket, frames, reply).await
    }

    /// Records the frames, then sends the reply; closes the connection instead
    /// of answering when they cannot be recorded.
    async fn answer_recorded(
        &mut self,
        socket: &mut WebSocket,
        frames: Vec<OcppFrameEvent>,
        reply: Frame,
    ) -> Result<(), String> {
        if let Err(store_error) = self.commit_or_retry(frames, vec![], "a refused frame").await {
            tracing::error!(charger = %self.id, %store_error, "could not record a frame; closing instead of answering");
            let _ = socket.send(close(1011, "the platform cannot record this message now; retry")).await;
            return Err(format!("could not record a frame: {store_error}"));
        }
        self.send(socket, reply.to_text()).await
    }

    async fn on_text(&mut self, socket: &mut WebSocket, raw: String) -> Result<(), String> {
        match frame::parse(&raw) {
            // A malformed answer to the command in flight settles it (refused), like a malformed call.
            Err(error) if matches!(error.type_id, Some(3 | 4)) && self.awaits(error.id.as_deref()) => {
                let (type_id, id) = (error.type_id.unwrap_or(3), error.id.clone().unwrap_or_default());
                self.on_result(raw, type_id, id, Err(error)).await;
                Ok(())
            }
            Err(error) => self.reject(socket, raw, error).await,
            Ok(Frame::Call { id, action, payload }) => self.on_call(socket, raw, id, action, payload).await,
            Ok(result) => {
                self.on_result(raw, result.type_id(), result.id().to_owned(), Ok(result)).await;
                Ok(())
            }
        }
    }

    /// Whether the command in flight waits for an answer with this message id.
    fn awaits(&self, message_id: Option<&str>) -> bool {
        self.in_flight.as_ref().is_some_and(|f| Some(f.message_id.as_str()) == message_id)
    }

    async fn on_call(
        &mut self,
        socket: &mut WebSocket,
        raw: String,
        id: String,
        action: String,
        payload: Value,
    ) -> Result<(), String> {
        let refuse = |code: ErrorCode, description: String| frame::FrameError {
            id: Some(id.clone()),
            type_id: Some(2),
            action: Some(action.clone()),
            code,
            description,
        };
        if !schema::knows(self.version, &action) {
            return self
                .reject(socket, raw, refuse(ErrorCode::NotImplemented, format!("{action} is not an OCPP action")))
                .await;
        }
        if !messages::handled(self.version, &action) {
            return self
                .reject(
                    socket,
                    raw,
                    refuse(ErrorCode::NotSupported, format!("{action} is not accepted from a charge point")),
                )
                .await;
        }
        if let Err((code, description)) = schema::validate(self.version, &action, false, &payload) {
            return self.reject(socket, raw, refuse(code, description)).await;
        }
        let heartbeat = self.gateway.inner.config.heartbeat_interval_s;
        for attempt in 0..3 {
            let now = now();
            let command = match messages::translate(self.version, &action, &payload, now, heartbeat) {
                Ok(command) => command,
                Err((code, description)) => return self.reject(socket, raw, refuse(code, description)).await,
            };
            let effects = match command {
                Some(command) => match Charger::decide(&self.state, command) {
                    Ok(effects) => effects,
                    Err(refusal) => {
                        return self.reject(socket, raw, refuse(ErrorCode::GenericError, refusal.to_string())).await
                    }
                },
                None => vec![],
            };
            let after = effects.iter().fold(self.state.clone(), Charger::evolve);
            let response = messages::respond(self.version, &action, &payload, &after, now, heartbeat);
            if let Err((_, problem)) = schema::validate(self.version, &action, true, &response) {
                tracing::error!(charger = %self.id, %action, %problem, "our own response does not match the schema");
                return self
                    .reject(socket, raw, refuse(ErrorCode::InternalError, "the platform could not answer".into()))
                    .await;
            }
            let record = EFFECTFUL.contains(&action.as_str()).then(|| {
                let mut h = Sha256::new();
                h.update(action.as_bytes());
                h.update(payload.to_string().as_bytes());
                CommandRecord {
                    company_id: self.company,
                    command_id: format!("ocpp:{}:{}:{}", self.id, id, &hex::encode(h.finalize())[..16]),
                    command_type: format!("ocpp.{action}"),
                    request_hash: vec![],
                    outcome: response.clone(),
                }
            });
            let reply = Frame::CallResult { id: id.clone(), payload: response };
            let frames = self.exchange(&id, &action, &raw, &reply);
            match self.commit(frames, effects, vec![], record.clone(), Uuid::now_v7()).await {
                Ok(()) => return self.send(socket, reply.to_text()).await,
                Err(StoreError::DuplicateCommand(_)) => {
                    // The same message again (a retry after a reconnect): the
                    // first answer, no second effect; the frames are still recorded.
                    let stored = match &record {
                        Some(r) => self
                            .store
                            .find_command(self.company, &r.command_id)
                            .await
                            .ok()
                            .flatten()
                            .map(|(_, outcome)| outcome),
                        None => None,
                    };
                    let reply = Frame::CallResult { id: id.clone(), payload: stored.unwrap_or_else(|| json!({})) };
                    let frames = self.exchange(&id, &action, &raw, &reply);
                    if let Err(error) = self.commit(frames, vec![], vec![], None, Uuid::now_v7()).await {
                        tracing::error!(charger = %self.id, %error, "could not record a repeated frame");
                    }
                    return self.send(socket, reply.to_text()).await;
                }
                Err(StoreError::Conflict { .. }) if attempt < 2 => {
                    if let Err(error) = self.reload().await {
                        tracing::error!(charger = %self.id, %error, "could not reload the charger");
                    }
                }
                Err(error) => {
                    // Its effects were not recorded, so not acknowledged: the
                    // charger will retry. The refusal itself is recorded first.
                    tracing::error!(charger = %self.id, %action, %error, "could not record a frame");
                    let description = "the platform could not record this message; retry".to_owned();
                    return self.reject(socket, raw, refuse(ErrorCode::InternalError, description)).await;
                }
            }
        }
        Ok(())
    }

    /// A CALLRESULT or CALLERROR from the charger (or a frame that failed to
    /// parse as one but answers the command in flight). It gets the same checks
    /// as a call: a malformed answer, NUL anywhere included, is recorded with
    /// its rejection and fails the command as `invalid_response`.
    async fn on_result(
        &mut self,
        raw: String,
        type_id: i64,
        message_id: String,
        parsed: Result<Frame, frame::FrameError>,
    ) {
        let matching = self.awaits(Some(&message_id));
        let action = self.in_flight.as_ref().filter(|_| matching).map(|f| f.action.clone());
        let refused: Option<(String, String)> = match &parsed {
            Err(error) => Some((error.code.as_str(self.version).into(), error.description.clone())),
            Ok(result) if result.holds_nul() => Some((
                ErrorCode::FormatViolation.as_str(self.version).into(),
                "the answer holds NUL (U+0000) characters".into(),
            )),
            Ok(_) => None,
        };
        let mut received = self.frame(Direction::In, Some(type_id), Some(message_id), action, raw.clone());
        if let Some((code, description)) = &refused {
            let mut description = description.clone();
            if frame::needs_escaping(&raw) {
                description.push_str(frame::ESCAPED_NOTE);
            }
            received.rejection = Some(FrameRejection { code: code.clone(), description });
        }
        let mut extra = vec![];
        if let (true, Some(in_flight)) = (matching, self.in_flight.take()) {
            let event = match (refused, parsed) {
                (Some((code, description)), _) => OcppCommandEvent::Failed(OcppCommandFailed {
                    reason: OcppCommandFailed::INVALID_RESPONSE.into(),
                    error_code: Some(code),
                    description: Some(format!("the charger's answer was malformed: {description}")),
                    failed_at: now(),
                }),
                (None, Ok(Frame::CallResult { payload, .. })) => {
                    match schema::validate(self.version, &in_flight.action, true, &payload) {
                        Ok(()) => {
                            OcppCommandEvent::Answered(OcppCommandAnswered { response: payload, answered_at: now() })
                        }
                        Err((code, description)) => OcppCommandEvent::Failed(OcppCommandFailed {
                            reason: OcppCommandFailed::INVALID_RESPONSE.into(),
                            error_code: Some(code.as_str(self.version).into()),
                            description: Some(frame::storable(&description).into_owned()),
                            failed_at: now(),
                        }),
                    }
                }
                (None, Ok(Frame::CallError { code, description, .. })) => OcppCommandEvent::Failed(OcppCommandFailed {
                    reason: OcppCommandFailed::CALL_ERROR.into(),
                    error_code: Some(frame::storable(&code).into_owned()),
                    description: Some(frame::storable(&description).into_owned()),
                    failed_at: now(),
                }),
                (None, _) => return,
            };
            extra.push(self.command_write(in_flight.command_id, 2, event, Uuid::now_v7()));
        }
        if let Err(error) = self.commit_or_retry(vec![OcppFrameEvent::Received(received)], extra, "an answer").await {
            tracing::error!(charger = %self.id, %error, "could not record a result frame");
            let _ = self.reload().await;
        }
    }

    /// Sends the next queued command, if it is still waiting.
    async fn send_next(&mut self, socket: &mut WebSocket) -> Result<(), String> {
        while let Some(request) = self.queue.pop_front() {
            let message_id = Uuid::now_v7().to_string();
            let call = Frame::Call {
                id: message_id.clone(),
                action: request.action.clone(),
                payload: request.payload.clone(),
            };
            let sent =
                OcppCommandSent { message_id: message_id.clone(), connection_id: self.connection_id, sent_at: now() };
            let write = self.command_write(request.command_id, 1, OcppCommandEvent::Sent(sent), Uuid::now_v7());
            let frame = self.frame(
                Direction::Out,
                Some(2),
                Some(message_id.clone()),
                Some(request.action.clone()),
                call.to_text(),
            );
            match self.commit(vec![OcppFrameEvent::Sent(frame)], vec![], vec![write], None, Uuid::now_v7()).await {
                Ok(()) => {
                    let timeout = Duration::from_millis(request.timeout_ms.clamp(100, 600_000) as u64);
                    self.in_flight = Some(InFlight {
                        message_id,
                        command_id: request.command_id,
                        action: request.action,
                        deadline: Instant::now() + timeout,
                    });
                    return self.send(socket, call.to_text()).await;
                }
                Err(StoreError::Conflict { stream_id, .. }) if stream_id == command_stream_id(request.command_id) => {
                    // Already sent elsewhere, or given up on: not ours to send.
                }
                Err(error) => {
                    tracing::error!(charger = %self.id, %error, "could not record an outgoing command");
                    let _ = self.reload().await;
                    self.queue.push_front(request);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn time_out(&mut self) {
        let Some(in_flight) = self.in_flight.take() else { return };
        let failed = OcppCommandFailed {
            reason: OcppCommandFailed::TIMEOUT.into(),
            error_code: None,
            description: Some(format!("no answer to {} within the timeout", in_flight.action)),
            failed_at: now(),
        };
        let write = self.command_write(in_flight.command_id, 2, OcppCommandEvent::Failed(failed), Uuid::now_v7());
        if let Err(error) = self.commit(vec![], vec![], vec![write], None, Uuid::now_v7()).await {
            tracing::error!(charger = %self.id, %error, "could not record a command timeout");
        }
    }
}
