//! The `CpmsRegistry` aggregate: which live mapping holds each station and
//! charge point of one company.
//!
//! Stream: `cpms_registry-<company>`. It is the unique index of the mappings:
//! the command side appends its events in the same transaction as the mapping's,
//! with optimistic concurrency on both streams, so "one live mapping per station"
//! and "one mapping per charge point" hold under concurrent writers too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{CpmsRegistryEvent, KeysClaimed, KeysReleased};
use crate::{error::RefusalKind, Aggregate, CompanyId};

/// A registry's refusals: a station or charge point another live mapping holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The station has another live mapping.
    #[error("station {station_id} already has a live mapping ({holder})")]
    StationTaken {
        /// The station asked for.
        station_id: i64,
        /// The mapping holding it.
        holder: Uuid,
    },
    /// The charge point is mapped by another live mapping.
    #[error("charge point {charge_point_id} is already mapped to station {station_id} ({holder})")]
    ChargePointTaken {
        /// The charge point asked for.
        charge_point_id: String,
        /// The station it is mapped to.
        station_id: i64,
        /// The mapping holding it.
        holder: Uuid,
    },
}

impl RegistryError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'static> {
        match self {
            Self::StationTaken { .. } | Self::ChargePointTaken { .. } => RefusalKind::Conflict,
        }
    }
}

/// What one mapping holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Station the mapping holds; no other live mapping may hold it.
    pub station_id: i64,
    /// Charge points.
    pub charge_point_ids: Vec<String>,
}

/// Folded state: the claims of every live mapping of the company.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryState {
    /// By mapping.
    pub claims: BTreeMap<Uuid, Claim>,
}

impl RegistryState {
    /// The mapping holding a station.
    pub fn station_holder(&self, station_id: i64) -> Option<Uuid> {
        self.claims.iter().find(|(_, c)| c.station_id == station_id).map(|(id, _)| *id)
    }

    /// The mapping holding a charge point.
    pub fn charge_point_holder(&self, charge_point_id: &str) -> Option<(Uuid, i64)> {
        self.claims
            .iter()
            .find(|(_, c)| c.charge_point_ids.iter().any(|cp| cp == charge_point_id))
            .map(|(id, c)| (*id, c.station_id))
    }
}

/// Commands of the registry.
#[derive(Debug, Clone)]
pub enum RegistryCommand {
    /// A live mapping holds this station and these charge points (and nothing else).
    Claim {
        /// The mapping.
        mapping_id: Uuid,
        /// Station the mapping wants; refused if another live mapping holds it.
        station_id: i64,
        /// Charge points.
        charge_point_ids: Vec<String>,
        /// The clock.
        now: DateTime<Utc>,
    },
    /// A mapping is gone: let go of what it holds.
    Release {
        /// The mapping.
        mapping_id: Uuid,
        /// The clock.
        now: DateTime<Utc>,
    },
}

/// The registry aggregate.
#[derive(Debug)]
pub struct CpmsRegistry;

impl CpmsRegistry {
    /// Stream id of a company's registry.
    pub fn stream_id(company: CompanyId) -> String {
        format!("{}-{company}", Self::CATEGORY)
    }
}

impl Aggregate for CpmsRegistry {
    const CATEGORY: &'static str = "cpms_registry";
    type Error = RegistryError;
    type State = RegistryState;
    type Command = RegistryCommand;
    type Event = CpmsRegistryEvent;

    fn decide(state: &RegistryState, command: RegistryCommand) -> Result<Vec<CpmsRegistryEvent>, RegistryError> {
        match command {
            RegistryCommand::Claim { mapping_id, station_id, charge_point_ids, now } => {
                let wanted = Claim { station_id, charge_point_ids };
                if state.claims.get(&mapping_id) == Some(&wanted) {
                    return Ok(vec![]);
                }
                if let Some(other) = state.station_holder(station_id).filter(|m| *m != mapping_id) {
                    return Err(RegistryError::StationTaken { station_id, holder: other });
                }
                for cp in &wanted.charge_point_ids {
                    if let Some((other, station)) = state.charge_point_holder(cp).filter(|(m, _)| *m != mapping_id) {
                        return Err(RegistryError::ChargePointTaken {
                            charge_point_id: cp.clone(),
                            station_id: station,
                            holder: other,
                        });
                    }
                }
                Ok(vec![CpmsRegistryEvent::Claimed(KeysClaimed {
                    mapping_id,
                    station_id,
                    charge_point_ids: wanted.charge_point_ids,
                    claimed_at: now,
                })])
            }
            RegistryCommand::Release { mapping_id, now } => Ok(if state.claims.contains_key(&mapping_id) {
                vec![CpmsRegistryEvent::Released(KeysReleased { mapping_id, released_at: now })]
            } else {
                vec![]
            }),
        }
    }

    fn evolve(mut state: RegistryState, event: &CpmsRegistryEvent) -> RegistryState {
        match event {
            CpmsRegistryEvent::Claimed(c) => {
                let claim = Claim { station_id: c.station_id, charge_point_ids: c.charge_point_ids.clone() };
                state.claims.insert(c.mapping_id, claim);
            }
            CpmsRegistryEvent::Released(r) => {
                state.claims.remove(&r.mapping_id);
            }
        }
        state
    }
}
