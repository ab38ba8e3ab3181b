//! The `Terminal` aggregate: a charging terminal (charge point) and its connectors.
//!
//! Stream: `terminal-<id>`. Registration fixes the owning company; every later
//! command must come from that company or it is answered as "not found".

mod decide;
mod error;
mod events;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use error::TerminalError;
pub use events::{
    ChargerCredentialsSet, TerminalEvent, TerminalHealthReported, TerminalRegistered, TerminalStatusChanged,
};

use crate::{Aggregate, CompanyId, TerminalId};

/// OCPP protocol version a terminal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OcppVersion {
    /// OCPP 1.6-J.
    #[serde(rename = "1.6")]
    V16,
    /// OCPP 2.0.1.
    #[serde(rename = "2.0.1")]
    V201,
}

impl OcppVersion {
    /// The version a protocol string names, as `charger.connected` events and the
    /// read models record it (`"1.6"`, `"2.0.1"`). Anything but `"2.0.1"` is 1.6:
    /// a charger that never said otherwise is assumed to speak the older protocol.
    pub fn from_protocol(protocol: &str) -> Self {
        if protocol == Self::V201.as_protocol() {
            Self::V201
        } else {
            Self::V16
        }
    }

    /// The protocol string of this version (`"1.6"` or `"2.0.1"`), the same text
    /// its serde form and [`OcppVersion::from_protocol`] use.
    pub fn as_protocol(self) -> &'static str {
        match self {
            Self::V16 => "1.6",
            Self::V201 => "2.0.1",
        }
    }
}

/// Physical connector standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConnectorType {
    /// IEC 62196 Type 1 (J1772).
    Type1,
    /// IEC 62196 Type 2 (Mennekes).
    Type2,
    /// Combined Charging System, Type 1 inlet.
    CCS1,
    /// Combined Charging System, Type 2 inlet.
    CCS2,
    /// CHAdeMO, the Japanese DC fast-charging standard.
    #[schemars(description = "CHAdeMO.")]
    CHAdeMO,
    /// GB/T (China).
    #[serde(rename = "GB/T")]
    GbT,
    /// North American Charging Standard (SAE J3400).
    NACS,
    /// Domestic socket.
    Domestic,
}

/// One connector of a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    /// OCPP connector id, from 1.
    pub id: u32,
    /// Connector standard.
    #[serde(rename = "type")]
    pub connector_type: ConnectorType,
    /// Maximum power in watts.
    pub max_power_w: u32,
}

/// Availability status of a terminal, with OCPP 1.6 ChargePointStatus names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TerminalStatus {
    /// Ready for a new session.
    Available,
    /// A driver is about to start.
    Preparing,
    /// Energy is flowing.
    Charging,
    /// The EVSE is not offering energy.
    SuspendedEVSE,
    /// The vehicle is not taking energy.
    SuspendedEV,
    /// A session ended; the connector is not yet free.
    Finishing,
    /// Held for a reservation.
    Reserved,
    /// Taken out of service (also the state before a terminal is first seen).
    Unavailable,
    /// Out of order.
    Faulted,
}

impl TerminalStatus {
    /// Every status, in a stable order (used by statistics).
    pub const ALL: [TerminalStatus; 9] = [
        Self::Available,
        Self::Preparing,
        Self::Charging,
        Self::SuspendedEVSE,
        Self::SuspendedEV,
        Self::Finishing,
        Self::Reserved,
        Self::Unavailable,
        Self::Faulted,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Available => "Available",
            Self::Preparing => "Preparing",
            Self::Charging => "Charging",
            Self::SuspendedEVSE => "SuspendedEVSE",
            Self::SuspendedEV => "SuspendedEV",
            Self::Finishing => "Finishing",
            Self::Reserved => "Reserved",
            Self::Unavailable => "Unavailable",
            Self::Faulted => "Faulted",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Statuses an operator may set through the API; the rest are reported by the charger.
    pub fn operator_settable(&self) -> bool {
        matches!(self, Self::Available | Self::Unavailable | Self::Faulted)
    }
}

/// Kind of a health report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthKind {
    /// The terminal is alive.
    Heartbeat,
    /// Something went wrong.
    Fault,
    /// A fault cleared.
    Recovery,
}

/// Severity of a health report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational only: nothing is wrong (the severity of every heartbeat).
    #[schemars(description = "Informational.")]
    Info,
    /// Degraded but working.
    Warning,
    /// Not working.
    Error,
    /// Not working and needs attention now.
    Critical,
}

/// Who changed a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusSource {
    /// An operator through the API.
    Operator,
    /// A health report (fault or recovery).
    Health,
    /// The charger itself (OCPP StatusNotification).
    Charger,
}

/// Folded state of a terminal stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TerminalState {
    /// No events yet.
    #[default]
    Unregistered,
    /// Registered and live.
    Registered(Box<RegisteredTerminal>),
}

/// What the write side knows of a registered terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredTerminal {
    /// Registration as recorded.
    pub registration: TerminalRegistered,
    /// Current status.
    pub status: TerminalStatus,
    /// Reason given with the current status.
    pub status_reason: Option<String>,
    /// Last heartbeat or health report time.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// OCPP security profile now (0, 1 or 2).
    pub security_profile: u8,
    /// Argon2id hash of the charger's current basic-auth password.
    pub password_hash: Option<String>,
}

impl RegisteredTerminal {
    /// The owning company.
    pub fn company_id(&self) -> CompanyId {
        self.registration.company_id
    }
}

/// The security profile a `terminal.registered` implies on its own: a hash
/// means HTTP Basic (profile 1), none means profile 0.
pub fn implied_profile(password_hash: Option<&str>) -> u8 {
    u8::from(password_hash.is_some())
}

/// Register a new terminal.
#[derive(Debug, Clone)]
pub struct RegisterTerminal {
    /// Company the terminal is registered to; later commands from others get "not found".
    pub company_id: CompanyId,
    /// Charge point identity.
    pub terminal_id: TerminalId,
    /// Station the terminal belongs to.
    pub station_id: i64,
    /// Manufacturer name, 1 to 50 characters (trimmed when recorded).
    pub vendor: String,
    /// Model name, 1 to 50 characters (trimmed when recorded).
    pub model: String,
    /// OCPP version the charger will speak to our gateway.
    pub ocpp_version: OcppVersion,
    /// 1 to 32 connectors, each with a distinct id from 1; recorded sorted by id.
    pub connectors: Vec<Connector>,
    /// Argon2id PHC string of the OCPP basic-auth password, hashed by the caller.
    pub password_hash: Option<String>,
    /// OCPP security profile asked for: 0 (no password) must be explicit;
    /// absent means 1 when a password is given.
    pub security_profile: Option<u8>,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Set or rotate the charger's OCPP credentials (operator action).
#[derive(Debug, Clone)]
pub struct SetChargerCredentials {
    /// Caller's company.
    pub company_id: CompanyId,
    /// Argon2id PHC string of the new password, hashed by the caller.
    pub password_hash: Option<String>,
    /// Profile asked for: 0 (no password) must be explicit; absent keeps
    /// profile 1 or 2, and makes a profile 0 terminal profile 1.
    pub security_profile: Option<u8>,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Report the terminal's health.
#[derive(Debug, Clone)]
pub struct ReportHealth {
    /// Caller's company.
    pub company_id: CompanyId,
    /// Kind of report.
    pub kind: HealthKind,
    /// How bad it is: a heartbeat must be `Info`; a fault at `Error` or above
    /// marks the terminal `Faulted`.
    pub severity: Severity,
    /// Vendor or OCPP error code.
    pub code: Option<String>,
    /// Free text.
    pub message: Option<String>,
    /// When it happened at the terminal.
    pub occurred_at: DateTime<Utc>,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Set the terminal's status (operator action).
#[derive(Debug, Clone)]
pub struct ChangeStatus {
    /// Caller's company.
    pub company_id: CompanyId,
    /// New status.
    pub status: TerminalStatus,
    /// Reason shown with the new status, 1 to 500 characters when given.
    pub reason: Option<String>,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Register a charger that connected without being registered, when the
/// gateway is configured to auto-register: no station, vendor and model unknown
/// until it boots, connectors learned from its status notifications.
#[derive(Debug, Clone)]
pub struct AutoRegisterTerminal {
    /// The company unknown chargers are registered to.
    pub company_id: CompanyId,
    /// Charge point identity.
    pub terminal_id: TerminalId,
    /// Protocol it connected with.
    pub ocpp_version: OcppVersion,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Commands of the terminal aggregate.
#[derive(Debug, Clone)]
pub enum TerminalCommand {
    /// See [`RegisterTerminal`].
    Register(RegisterTerminal),
    /// See [`AutoRegisterTerminal`].
    AutoRegister(AutoRegisterTerminal),
    /// See [`ReportHealth`].
    ReportHealth(ReportHealth),
    /// See [`ChangeStatus`].
    ChangeStatus(ChangeStatus),
    /// See [`SetChargerCredentials`].
    SetCredentials(SetChargerCredentials),
}

/// The terminal aggregate.
#[derive(Debug)]
pub struct Terminal;

impl Terminal {
    /// Stream id of a terminal.
    pub fn stream_id(id: &TerminalId) -> String {
        format!("{}-{}", Self::CATEGORY, id)
    }
}

impl Aggregate for Terminal {
    const CATEGORY: &'static str = "terminal";
    type Error = TerminalError;
    type State = TerminalState;
    type Command = TerminalCommand;
    type Event = TerminalEvent;

    fn decide(state: &TerminalState, command: TerminalCommand) -> Result<Vec<TerminalEvent>, TerminalError> {
        decide::decide(state, command)
    }

    fn evolve(state: TerminalState, event: &TerminalEvent) -> TerminalState {
        match (state, event) {
            (TerminalState::Unregistered, TerminalEvent::Registered(r)) => {
                TerminalState::Registered(Box::new(RegisteredTerminal {
                    registration: r.clone(),
                    status: TerminalStatus::Unavailable,
                    status_reason: None,
                    last_seen_at: None,
                    security_profile: implied_profile(r.password_hash.as_deref()),
                    password_hash: r.password_hash.clone(),
                }))
            }
            (TerminalState::Registered(mut t), TerminalEvent::CredentialsSet(c)) => {
                t.security_profile = c.security_profile;
                t.password_hash = c.password_hash.clone();
                TerminalState::Registered(t)
            }
            (TerminalState::Registered(mut t), TerminalEvent::HealthReported(h)) => {
                t.last_seen_at = Some(t.last_seen_at.map_or(h.occurred_at, |seen| seen.max(h.occurred_at)));
                TerminalState::Registered(t)
            }
            (TerminalState::Registered(mut t), TerminalEvent::StatusChanged(s)) => {
                t.status = s.to;
                t.status_reason = s.reason.clone();
                TerminalState::Registered(t)
            }
            // Events out of order cannot come from decide; a fold ignores them.
            (state, _) => state,
        }
    }
}
