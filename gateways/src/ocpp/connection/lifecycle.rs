//! How a connection begins and ends in the log: the charger's state and
//! stream tips are loaded and the connection recorded before the first frame
//! is read; a command left in flight and the disconnection are recorded when
//! it closes.

use commands::{CommandError, RecordedEvent, StoreError};
use domain::{
    charger::{
        command::{OcppCommandEvent, OcppCommandFailed},
        Charger, ChargerCommand, ChargerEvent, ChargerState,
    },
    Aggregate, CompanyId,
};

use super::{
    append::{Append, CommandWrite},
    now, Conn, Tip,
};
use crate::ocpp::limits::FrameLimiter;

impl Conn {
    /// Loads the charger's state and stream tips, then records the connection.
    pub(super) async fn reload(&mut self) -> Result<(), StoreError> {
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
        let (version, hash) = self.store.stream_tip(&self.frame_stream()).await?;
        self.frames = Tip { version, hash };
        Ok(())
    }

    pub(super) async fn open(&mut self) -> Result<(), CommandError> {
        self.reload().await?;
        let connect = ChargerCommand::Connect {
            company_id: CompanyId(self.company),
            connection_id: self.connection_id,
            protocol: self.version,
            gateway_id: self.gateway.inner.config.gateway_id,
            at: now(),
        };
        self.append(Append::deciding("ocpp.connect", connect)).await?;
        self.queue.extend(commands::ocpp_commands::pending_for(&self.store, self.id.as_str()).await?);
        Ok(())
    }

    pub(super) async fn close(&mut self, reason: &str) {
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
            let write =
                CommandWrite { command_id: in_flight.command_id, after: 2, event: OcppCommandEvent::Failed(failed) };
            let _ = self.append(Append::frames("ocpp.command_failed", &[]).with_writes(vec![write])).await;
        }
        let disconnect =
            ChargerCommand::Disconnect { connection_id: self.connection_id, reason: reason.to_owned(), at: now() };
        // A disconnection of a connection the log no longer holds open (one
        // that replaced it recorded its own) is refused: nothing to record.
        let append = Append { ignore_refusal: true, ..Append::deciding("ocpp.disconnect", disconnect) };
        if let Err(error) = self.append(append).await {
            tracing::error!(charger = %self.id, %error, "could not record the disconnection");
        }
    }
}
