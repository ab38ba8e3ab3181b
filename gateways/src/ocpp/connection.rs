//! One charger connection: frames in, decisions, appends, answers; commands
//! out, one at a time; pings; and a clean record of how it ended.

mod append;
mod calls;
mod flood;
mod lifecycle;

use std::{borrow::Cow, collections::VecDeque};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::{DateTime, SubsecRound, Utc};
use commands::{EventStore, Metadata};
use domain::{
    charger::{
        command::OcppCommandRequested, Charger, ChargerState, Direction, FrameRejection, OcppFrame, OcppFrameEvent,
    },
    terminal::OcppVersion,
    TerminalId,
};
use serde_json::{json, Value};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::append::Append;
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
    /// After the log refused to record an outgoing command: when to try
    /// again, and how many tries in a row failed (the pause doubles).
    send_retry: Option<(Instant, u32)>,
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
        send_retry: None,
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

/// The refusal of the CALL `id` for `action`.
fn refusal(id: &str, action: &str, code: ErrorCode, description: String) -> frame::FrameError {
    frame::FrameError { id: Some(id.to_owned()), type_id: Some(2), action: Some(action.to_owned()), code, description }
}

/// Whether a socket error is a frame or message over the size limit.
fn too_large(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    use tokio_tungstenite::tungstenite::{error::CapacityError, Error};
    matches!(error.downcast_ref::<Error>(), Some(Error::Capacity(CapacityError::MessageTooLong { .. })))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.to_owned().into() }))
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

    /// The received CALL and our CALLRESULT, as frame events.
    fn exchange(&self, id: &str, action: &str, raw: &str, reply: &Frame) -> Vec<OcppFrameEvent> {
        let (id, action) = (Some(id.to_owned()), Some(action.to_owned()));
        vec![
            OcppFrameEvent::Received(self.frame(Direction::In, Some(2), id.clone(), action.clone(), raw.to_owned())),
            OcppFrameEvent::Sent(self.frame(Direction::Out, Some(reply.type_id()), id, action, reply.to_text())),
        ]
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
            let retry_at = self.send_retry.map(|(at, _)| at);
            if self.in_flight.is_none() && !self.queue.is_empty() && retry_at.is_none_or(|at| at <= Instant::now()) {
                if let Err(reason) = self.send_next(socket).await {
                    return reason;
                }
            }
            let deadline = self.in_flight.as_ref().map(|f| f.deadline);
            let retry_at = self.send_retry.map(|(at, _)| at).filter(|_| self.in_flight.is_none());
            tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = socket.send(close(1001, "replaced by a new connection or gateway shutdown")).await;
                    return "closed by the gateway (replaced by a new connection, or shutdown)".into();
                }
                message = socket.recv() => match message {
                    None => return "closed by the charger".into(),
                    Some(Err(error)) => {
                        let error = error.into_inner();
                        if too_large(error.as_ref()) {
                            let max = self.gateway.inner.config.max_frame_bytes;
                            let _ = socket.send(close(1009, &format!("frame larger than {max} bytes"))).await;
                            return format!("frame too large: {error}");
                        }
                        return format!("connection error: {error}");
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
                // Time to try the queued command again (see `send_next`).
                _ = async { if let Some(at) = retry_at { tokio::time::sleep_until(at).await } }, if retry_at.is_some() => {}
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
        self.answer_recorded(socket, "ocpp.frame_refused", frames, reply).await
    }

    /// Records the frames, then sends the reply; closes the connection instead
    /// of answering when they cannot be recorded.
    pub(super) async fn answer_recorded(
        &mut self,
        socket: &mut WebSocket,
        command_type: &'static str,
        frames: Vec<OcppFrameEvent>,
        reply: Frame,
    ) -> Result<(), String> {
        if let Err(store_error) = self.append(Append::frames(command_type, &frames)).await {
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
        let refuse = |code, description| refusal(&id, &action, code, description);
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
        self.decide_call(socket, raw, id, action, payload).await
    }
}
