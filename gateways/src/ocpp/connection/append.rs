//! How a connection writes: every append goes through the one command path
//! ([`commands::decision`]), with the charger's state and the streams' tips
//! this connection holds as the first attempt's knowledge. A concurrent change
//! (a replaced connection still finishing) makes the path read the streams
//! again and decide again; a charger command's stream is written only at a
//! fixed version (`sent` after the request, its fate after `sent`), so a
//! command is sent at most once and its fate recorded once.

use commands::{
    decision::{self, Decision, Ran, Stream},
    CommandContext, CommandError, NewEvent, RecordedEvent, StoreError,
};
use domain::charger::{command::command_stream_id, Charger, ChargerCommand, ChargerState, OcppFrameEvent};
use serde_json::Value;
use uuid::Uuid;

use super::{Conn, Tip};

#[derive(Clone)]
/// An event for a charger command's stream, appended only if the stream is
/// at `after` (1: requested, so this is its `sent`; 2: sent, so its fate).
pub(super) struct CommandWrite {
    pub(super) command_id: Uuid,
    pub(super) after: i64,
    pub(super) event: domain::charger::command::OcppCommandEvent,
}

impl CommandWrite {
    pub(super) fn stream_id(&self) -> String {
        command_stream_id(self.command_id)
    }
}

/// What one append holds besides a decision on the charger.
#[derive(Clone)]
pub(super) struct Append {
    /// What the `command_log` row says it was (`ocpp.connect`, `ocpp.frame`, …).
    pub(super) command_type: &'static str,
    /// Frame events, in order; the first one is the cause of the rest.
    pub(super) frames: Vec<NewEvent>,
    /// Events for charger command streams.
    pub(super) writes: Vec<CommandWrite>,
    /// Decided on the charger's current state; effects go to its stream.
    /// A refusal is answered as the error, unless `ignore_refusal`.
    pub(super) command: Option<ChargerCommand>,
    pub(super) ignore_refusal: bool,
}

impl Append {
    pub(super) fn frames(command_type: &'static str, frames: &[OcppFrameEvent]) -> Self {
        Self {
            command_type,
            frames: frames.iter().map(NewEvent::from_domain).collect(),
            writes: vec![],
            command: None,
            ignore_refusal: false,
        }
    }

    pub(super) fn with_writes(mut self, writes: Vec<CommandWrite>) -> Self {
        self.writes = writes;
        self
    }

    pub(super) fn deciding(command_type: &'static str, command: ChargerCommand) -> Self {
        Self { command_type, frames: vec![], writes: vec![], command: Some(command), ignore_refusal: false }
    }
}

impl Conn {
    /// A command id for an append that is not a charger's effectful message:
    /// unique, so it is recorded without a look-up, and every event of the
    /// append carries it.
    pub(super) fn fresh_command_id(&self) -> String {
        format!("ocpp:{}:{}", self.id, Uuid::now_v7())
    }

    /// The context of this connection's appends under `command_id`.
    pub(super) fn context(&self, correlation: Uuid, command_id: String) -> CommandContext {
        CommandContext {
            company_id: self.company,
            command_id: Some(command_id),
            request_hash: vec![],
            correlation_id: correlation,
            causation_id: None,
            actor: format!("charger:{}", self.id),
        }
    }

    /// The streams of one append: the frames' tip, the charger as this
    /// connection knows it (only when deciding on it), and command streams at
    /// their fixed versions, each with the metadata its events carry.
    pub(super) fn streams(
        &self,
        frames: bool,
        charger: bool,
        writes: &[CommandWrite],
        cause: Option<Uuid>,
        command_id: Option<String>,
    ) -> Vec<Stream> {
        let correlation = cause.unwrap_or_else(Uuid::now_v7);
        let mut streams = Vec::with_capacity(2 + writes.len());
        if frames {
            streams.push(
                Stream::tip(self.frame_stream(), self.frames.version, self.frames.hash).with_metadata(self.metadata(
                    correlation,
                    None,
                    command_id.clone(),
                )),
            );
        }
        if charger {
            streams.push(
                Stream::known::<Charger>(
                    self.charger_stream(),
                    self.state.clone(),
                    self.charger.version,
                    self.charger.hash,
                )
                .with_metadata(self.metadata(correlation, cause, command_id.clone())),
            );
        }
        for write in writes {
            streams.push(Stream::at(write.stream_id(), write.after).with_metadata(self.metadata(
                Uuid::now_v7(),
                None,
                command_id.clone(),
            )));
        }
        streams
    }

    /// Moves the tips and the state after an append.
    pub(super) fn appended(&mut self, events: &[RecordedEvent], state: Option<ChargerState>) {
        let (frame_stream, charger_stream) = (self.frame_stream(), self.charger_stream());
        for r in events {
            let tip = Tip { version: r.stream_version, hash: Some(r.hash_array()) };
            if r.stream_id == frame_stream {
                self.frames = tip;
            } else if r.stream_id == charger_stream {
                self.charger = tip;
            }
        }
        if let Some(state) = state {
            self.state = state;
        }
    }

    /// Appends `append` through the command path; once more after reloading
    /// when the database itself failed (a dropped connection): conflicts are
    /// retried by the path, this covers what the path does not.
    pub(super) async fn append(&mut self, append: Append) -> Result<(), CommandError> {
        match self.append_once(&append).await {
            Err(CommandError::Store(error @ StoreError::Database(_))) => {
                tracing::warn!(charger = %self.id, %error, "could not record {}; retrying", append.command_type);
                self.reload().await?;
                self.append_once(&append).await
            }
            other => other,
        }
    }

    async fn append_once(&mut self, append: &Append) -> Result<(), CommandError> {
        let Append { command_type, frames, writes, command, ignore_refusal } = append;
        if frames.is_empty() && writes.is_empty() && command.is_none() {
            return Ok(());
        }
        let cause = frames.first().map(|e| e.event_id);
        let command_id = self.fresh_command_id();
        let streams = self.streams(!frames.is_empty(), command.is_some(), writes, cause, Some(command_id.clone()));
        let ctx = self.context(cause.unwrap_or_else(Uuid::now_v7), command_id);
        let (frame_stream, charger_stream) = (self.frame_stream(), self.charger_stream());
        let ran = decision::run_optimistic_as::<_, CommandError>(
            &self.store,
            &ctx,
            command_type,
            streams,
            |d: &mut Decision| {
                if !frames.is_empty() {
                    d.record_new(&frame_stream, frames.iter().cloned())?;
                }
                for write in writes {
                    d.record(&write.stream_id(), std::slice::from_ref(&write.event))?;
                }
                let Some(command) = command else { return Ok(None) };
                match d.try_decide::<Charger>(&charger_stream, command.clone())? {
                    Ok(_) => {}
                    Err(_) if *ignore_refusal => {}
                    Err(refusal) => return Err(CommandError::Domain(refusal.into())),
                }
                // Kept by the connection once appended; the decision is done with it.
                Ok(Some(d.take_state::<Charger>(&charger_stream)?))
            },
            |_| Value::Null,
        )
        .await?;
        if let Ran::Decided { value, events, .. } = ran {
            self.appended(&events, value);
        }
        Ok(())
    }
}
