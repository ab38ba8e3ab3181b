//! A charger's CALLs (decided on the charger, answered once recorded), its
//! answers to our commands, and our commands out, one at a time.

use std::time::Duration;

use axum::extract::ws::WebSocket;
use commands::{
    decision::{self, Ran},
    CommandError, NewEvent, StoreError,
};
use domain::charger::{
    command::{command_stream_id, OcppCommandAnswered, OcppCommandEvent, OcppCommandFailed, OcppCommandSent},
    Charger, ChargerState, Direction, FrameRejection, OcppFrameEvent,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    append::{Append, CommandWrite},
    now, refusal, Conn, InFlight, EFFECTFUL,
};
use crate::ocpp::{
    frame::{self, ErrorCode, Frame},
    messages, schema,
};

/// Why a CALL was not acknowledged.
enum CallFailure {
    /// Refused with this OCPP error (translation or the charger's rules).
    Refuse(ErrorCode, String),
    /// Our own response broke the action's schema.
    OwnResponse(String),
    /// The command path failed: not recorded, so not acknowledged.
    Command(CommandError),
}

impl From<CommandError> for CallFailure {
    fn from(value: CommandError) -> Self {
        Self::Command(value)
    }
}

impl Conn {
    /// A valid CALL: decided on the charger's state, its frames and effects
    /// appended in one transaction under the message's command id (for
    /// effectful actions), then answered. A repeat of an effectful message
    /// gets the first answer and no second effect; its frames are recorded.
    pub(super) async fn decide_call(
        &mut self,
        socket: &mut WebSocket,
        raw: String,
        id: String,
        action: String,
        payload: Value,
    ) -> Result<(), String> {
        let refuse = |code, description| refusal(&id, &action, code, description);
        let heartbeat = self.gateway.inner.config.heartbeat_interval_s;
        let at = now();
        // An effectful message's id is its own (a repeat is the same command);
        // any other append gets a fresh one.
        let command_id = if EFFECTFUL.contains(&action.as_str()) {
            let mut h = Sha256::new();
            h.update(action.as_bytes());
            h.update(payload.to_string().as_bytes());
            // The charger id's length keeps ids of two chargers apart
            // even when terminal ids and message ids hold `:`.
            let charger = self.id.as_str();
            format!("ocpp:{}:{charger}:{id}:{}", charger.len(), &hex::encode(h.finalize())[..16])
        } else {
            self.fresh_command_id()
        };
        let received = self.frame(Direction::In, Some(2), Some(id.clone()), Some(action.clone()), raw.clone());
        let received = NewEvent::from_domain(&OcppFrameEvent::Received(received));
        let cause = received.event_id;
        let streams = self.streams(true, true, &[], Some(cause), Some(command_id.clone()));
        let ctx = self.context(cause, command_id);
        let (frame_stream, charger_stream, version) = (self.frame_stream(), self.charger_stream(), self.version);
        let command_type = format!("ocpp.{action}");
        let this = &*self;
        let ran = decision::run_optimistic_as::<(Value, ChargerState), CallFailure>(
            &this.store,
            &ctx,
            &command_type,
            streams,
            |d| {
                let command = messages::translate(version, &action, &payload, at, heartbeat)
                    .map_err(|(code, description)| CallFailure::Refuse(code, description))?;
                if let Some(command) = command {
                    d.try_decide::<Charger>(&charger_stream, command)?
                        .map_err(|refusal| CallFailure::Refuse(ErrorCode::GenericError, refusal.to_string()))?;
                }
                let after = d.state::<Charger>(&charger_stream)?.clone();
                let response = messages::respond(version, &action, &payload, &after, at, heartbeat);
                if let Err((_, problem)) = schema::validate(version, &action, true, &response) {
                    return Err(CallFailure::OwnResponse(problem));
                }
                let reply = Frame::CallResult { id: id.clone(), payload: response.clone() };
                let sent = this.frame(Direction::Out, Some(3), Some(id.clone()), Some(action.clone()), reply.to_text());
                d.record_new(&frame_stream, [received.clone(), NewEvent::from_domain(&OcppFrameEvent::Sent(sent))])?;
                Ok((response, after))
            },
            |(response, _)| response.clone(),
        )
        .await;
        match ran {
            Ok(Ran::Decided { value: (response, after), events, .. }) => {
                self.appended(&events, Some(after));
                let reply = Frame::CallResult { id, payload: response };
                self.send(socket, reply.to_text()).await
            }
            Ok(Ran::Replayed(stored)) => {
                // The same message again (a retry after a reconnect): the first
                // answer, no second effect; the frames are still recorded.
                let reply = Frame::CallResult { id: id.clone(), payload: stored };
                // Not answered unless recorded: closed instead, the charger retries.
                let frames = self.exchange(&id, &action, &raw, &reply);
                self.answer_recorded(socket, "ocpp.repeated_call", frames, reply).await
            }
            Err(CallFailure::Refuse(code, description)) => self.reject(socket, raw, refuse(code, description)).await,
            Err(CallFailure::OwnResponse(problem)) => {
                tracing::error!(charger = %self.id, %action, %problem, "our own response does not match the schema");
                self.reject(socket, raw, refuse(ErrorCode::InternalError, "the platform could not answer".into())).await
            }
            Err(CallFailure::Command(error)) => {
                // Its effects were not recorded, so not acknowledged: the
                // charger will retry. The refusal itself is recorded first.
                tracing::error!(charger = %self.id, %action, %error, "could not record a frame");
                let description = "the platform could not record this message; retry".to_owned();
                self.reject(socket, raw, refuse(ErrorCode::InternalError, description)).await
            }
        }
    }

    /// A CALLRESULT or CALLERROR from the charger (or a frame that failed to
    /// parse as one but answers the command in flight). It gets the same checks
    /// as a call: a malformed answer, NUL anywhere included, is recorded with
    /// its rejection and fails the command as `invalid_response`.
    pub(super) async fn on_result(
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
        let mut writes = vec![];
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
            writes.push(CommandWrite { command_id: in_flight.command_id, after: 2, event });
        }
        let frames = [OcppFrameEvent::Received(received)];
        let answer = Append::frames("ocpp.command_answer", &frames).with_writes(writes);
        match self.append(answer).await {
            Ok(()) => {}
            // The API gave up on the command first (its fate is recorded): the
            // answer came too late to count, but its frame is still recorded.
            Err(CommandError::Store(StoreError::Conflict { stream_id, .. }))
                if stream_id.starts_with("ocpp_command-") =>
            {
                if let Err(error) = self.append(Append::frames("ocpp.command_answer", &frames)).await {
                    tracing::error!(charger = %self.id, %error, "could not record a result frame");
                }
            }
            Err(error) => tracing::error!(charger = %self.id, %error, "could not record a result frame"),
        }
    }

    /// Sends the next queued command, if it is still waiting.
    pub(super) async fn send_next(&mut self, socket: &mut WebSocket) -> Result<(), String> {
        while let Some(request) = self.queue.pop_front() {
            let message_id = Uuid::now_v7().to_string();
            let call = Frame::Call {
                id: message_id.clone(),
                action: request.action.clone(),
                payload: request.payload.clone(),
            };
            let sent =
                OcppCommandSent { message_id: message_id.clone(), connection_id: self.connection_id, sent_at: now() };
            let write = CommandWrite { command_id: request.command_id, after: 1, event: OcppCommandEvent::Sent(sent) };
            let frame = self.frame(
                Direction::Out,
                Some(2),
                Some(message_id.clone()),
                Some(request.action.clone()),
                call.to_text(),
            );
            let append = Append::frames("ocpp.command_sent", &[OcppFrameEvent::Sent(frame)]).with_writes(vec![write]);
            match self.append(append).await {
                Ok(()) => {
                    self.send_retry = None;
                    let timeout = Duration::from_millis(request.timeout_ms.clamp(100, 600_000) as u64);
                    self.in_flight = Some(InFlight {
                        message_id,
                        command_id: request.command_id,
                        action: request.action,
                        deadline: Instant::now() + timeout,
                    });
                    return self.send(socket, call.to_text()).await;
                }
                Err(CommandError::Store(StoreError::Conflict { stream_id, .. }))
                    if stream_id == command_stream_id(request.command_id) =>
                {
                    // Already sent elsewhere, or given up on: not ours to send.
                }
                Err(error) => {
                    // Not sent (it is sent only once recorded): it stays first
                    // in the queue, tried again after a pause that doubles, so
                    // a log that refuses writes is not asked again at once by
                    // every connection.
                    let failures = self.send_retry.map_or(1, |(_, n)| n.saturating_add(1));
                    let pause = send_retry_pause(failures);
                    tracing::error!(charger = %self.id, %error, retry_in_ms = pause.as_millis() as u64, "could not record an outgoing command");
                    self.send_retry = Some((Instant::now() + pause, failures));
                    let _ = self.reload().await;
                    self.queue.push_front(request);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The command in flight got no answer in time.
    pub(super) async fn time_out(&mut self) {
        let Some(in_flight) = self.in_flight.take() else { return };
        let failed = OcppCommandFailed {
            reason: OcppCommandFailed::TIMEOUT.into(),
            error_code: None,
            description: Some(format!("no answer to {} within the timeout", in_flight.action)),
            failed_at: now(),
        };
        let write =
            CommandWrite { command_id: in_flight.command_id, after: 2, event: OcppCommandEvent::Failed(failed) };
        if let Err(error) = self.append(Append::frames("ocpp.command_timeout", &[]).with_writes(vec![write])).await {
            tracing::error!(charger = %self.id, %error, "could not record a command timeout");
        }
    }
}

/// The pause before the `failures`-th retry of recording an outgoing command:
/// 500 ms doubling up to 30 s, with up to a quarter of jitter so connections
/// that failed together do not retry together.
pub(super) fn send_retry_pause(failures: u32) -> Duration {
    let base = Duration::from_millis(500u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(30));
    let jitter_ms = u64::try_from(base.as_millis() / 4).unwrap_or(0).max(1);
    base + Duration::from_millis(rand::random::<u64>() % jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_retry_pause_doubles_from_half_a_second_to_thirty_seconds() {
        for (failures, base_ms) in [(1, 500), (2, 1_000), (3, 2_000), (6, 16_000), (7, 30_000), (50, 30_000)] {
            let pause = send_retry_pause(failures).as_millis() as u64;
            assert!((base_ms..base_ms + base_ms / 4).contains(&pause), "failure {failures}: {pause} ms");
        }
    }
}
