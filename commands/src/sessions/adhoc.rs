//! Ad-hoc sessions: progress and completion reported by the caller (a CPMS
//! integration) instead of a charger.

use chrono::{DateTime, Utc};
use domain::{
    session::{ChargingStarted, SessionCommand, SessionState, SessionStatus},
    DomainError,
};
use uuid::Uuid;

use super::Sessions;
use crate::{payments::Actor, CommandError};

/// An ad-hoc session starts charging with its first report: its transaction
/// id is derived from the session, its meter from zero.
fn started(id: Uuid, at: DateTime<Utc>) -> SessionCommand {
    SessionCommand::ChargingStarted(ChargingStarted { transaction_id: format!("adhoc-{id}"), meter_start_wh: 0, at })
}

impl Sessions {
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
            SessionStatus::Authorized => vec![started(id, at), SessionCommand::Progress { energy_wh, at }],
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
            SessionStatus::Authorized => {
                vec![started(id, at), SessionCommand::ChargingStopped { energy_wh: energy, at }]
            }
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
