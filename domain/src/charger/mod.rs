//! The `Charger` aggregate: what a charge point told us over OCPP, in one model
//! for both protocol versions (stream `charger-<id>`).
//!
//! The gateway turns OCPP 1.6 and 2.0.1 messages into the version-neutral
//! commands below; 1.6 integer transaction ids and 2.0.1 string ids become the
//! same `transactionId` text. The rules here: one active transaction per id,
//! repeats have no second effect, meter readings must rise and fall inside the
//! transaction's window (violations are recorded, not applied), 2.0.1 seqNo gaps
//! are recorded.

pub mod command;
mod decide;
mod events;
mod flood;
pub mod requests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
pub use events::*;
pub use flood::FrameRejectionsSummarized;
use uuid::Uuid;

use crate::{error::RefusalKind, terminal::OcppVersion, Aggregate, CompanyId, TerminalId};

/// A transaction in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTransaction {
    /// EVSE (2.0.1).
    pub evse_id: Option<i64>,
    /// Connector the transaction runs on, if the charger named one.
    pub connector_id: Option<i64>,
    /// Id tag.
    pub id_tag: Option<String>,
    /// Register at start, Wh.
    pub meter_start_wh: Option<i64>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Highest accepted energy register, Wh.
    pub last_energy_wh: Option<i64>,
    /// Last 2.0.1 seqNo seen.
    pub last_seq_no: Option<i64>,
}

/// Folded state of a charger.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChargerState {
    /// Owner, from the first connection.
    pub company_id: Option<CompanyId>,
    /// Current connection, if connected.
    pub connection_id: Option<Uuid>,
    /// Protocol of the current or last connection.
    pub protocol: Option<OcppVersion>,
    /// Transactions in progress.
    pub active: BTreeMap<String, ActiveTransaction>,
    /// Transactions that ended (to answer repeats).
    pub finished: BTreeSet<String>,
    /// Highest numeric transaction id handed out or seen (1.6 ids).
    pub last_numeric_transaction_id: i64,
    /// Last status per (evse, connector).
    pub connector_status: BTreeMap<(i64, i64), String>,
}

impl ChargerState {
    /// The transaction a 1.6 StartTransaction refers to if it repeats one in progress.
    pub fn repeated_start(&self, connector_id: i64, id_tag: &str, started_at: DateTime<Utc>) -> Option<&str> {
        self.active
            .iter()
            .find(|(_, t)| {
                t.connector_id == Some(connector_id)
                    && t.id_tag.as_deref() == Some(id_tag)
                    && t.started_at == started_at
            })
            .map(|(id, _)| id.as_str())
    }
}

/// 2.0.1 TransactionEvent eventType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionEventKind {
    /// First message of a transaction; its first energy sample is the start register.
    Started,
    /// Mid-transaction message, typically carrying periodic meter samples.
    Updated,
    /// Last message of a transaction; its samples are accepted up to its timestamp plus skew.
    Ended,
}

/// What the gateway asks of the charger aggregate.
#[derive(Debug, Clone)]
pub enum ChargerCommand {
    /// A WebSocket connection was accepted.
    Connect {
        /// Company the terminal is registered to; refused if the charger's history is another's.
        company_id: CompanyId,
        /// The connection.
        connection_id: Uuid,
        /// Negotiated protocol.
        protocol: OcppVersion,
        /// Gateway instance.
        gateway_id: Uuid,
        /// Gateway clock when the connection was accepted.
        at: DateTime<Utc>,
    },
    /// The connection closed.
    Disconnect {
        /// The connection.
        connection_id: Uuid,
        /// Why it closed (by the charger, replaced, ping timeout, frame too large, shutdown).
        reason: String,
        /// Gateway clock when the connection closed.
        at: DateTime<Utc>,
    },
    /// A BootNotification (1.6 or 2.0.1), recorded as reported.
    Boot(ChargerBooted),
    /// A StatusNotification for one connector, recorded as reported.
    ReportStatus(ConnectorStatusChanged),
    /// 1.6 StartTransaction: the CSMS assigns the id.
    StartTransaction {
        /// Connector number from the StartTransaction request.
        connector_id: i64,
        /// Id tag.
        id_tag: String,
        /// Register at start, Wh.
        meter_start_wh: i64,
        /// Start time the charger sent; with connector and id tag it identifies a repeated start.
        timestamp: DateTime<Utc>,
    },
    /// 1.6 StopTransaction.
    StopTransaction {
        /// The 1.6 integer transaction id as decimal text.
        transaction_id: String,
        /// Register at stop, Wh.
        meter_stop_wh: i64,
        /// Stop time.
        timestamp: DateTime<Utc>,
        /// 1.6 stop reason as the charger sent it (Local, Remote, EVDisconnected, …).
        reason: Option<String>,
        /// transactionData samples.
        samples: Vec<MeterSample>,
        /// Gateway clock when the message arrived; unused, the sample window ends at `timestamp`.
        now: DateTime<Utc>,
    },
    /// MeterValues (1.6 or 2.0.1).
    RecordMeterValues {
        /// Transaction, if any.
        transaction_id: Option<String>,
        /// EVSE (2.0.1).
        evse_id: Option<i64>,
        /// 1.6 connector of the samples; `None` for 2.0.1, which names the EVSE.
        connector_id: Option<i64>,
        /// Normalised samples; those outside the transaction's window are recorded as anomalies.
        samples: Vec<MeterSample>,
        /// Gateway clock on arrival; samples later than this plus skew are anomalies.
        now: DateTime<Utc>,
    },
    /// 2.0.1 TransactionEvent.
    TransactionEvent {
        /// Started, Updated or Ended.
        kind: TransactionEventKind,
        /// Transaction id chosen by the charger.
        transaction_id: String,
        /// Sequence number.
        seq_no: i64,
        /// EVSE id from the message's `evse` object, when present.
        evse_id: Option<i64>,
        /// Connector id from the message's `evse` object, when present.
        connector_id: Option<i64>,
        /// Id token.
        id_tag: Option<String>,
        /// 2.0.1 remoteStartId, linking the transaction to a RequestStartTransaction.
        remote_start_id: Option<i64>,
        /// Normalised samples from the message's meterValue list.
        samples: Vec<MeterSample>,
        /// When the charger says it happened.
        timestamp: DateTime<Utc>,
        /// stoppedReason of an Ended event.
        stopped_reason: Option<String>,
        /// Gateway clock on arrival; bounds the sample window of Started and Updated.
        now: DateTime<Utc>,
    },
}

/// The charger aggregate.
#[derive(Debug)]
pub struct Charger;

impl Charger {
    /// Domain stream of a charger.
    pub fn stream_id(id: &TerminalId) -> String {
        format!("{}-{}", Self::CATEGORY, id)
    }

    /// Frame stream of a charger.
    pub fn frame_stream_id(id: &TerminalId) -> String {
        format!("ocpp-{id}")
    }
}

/// Why a charger refuses a command. Everything else a charger reports is
/// recorded, anomalies included, so the only refusal is about ownership.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargerError {
    /// A connection for another company than the one the charger's history
    /// belongs to (its id was registered again elsewhere).
    #[error("charger belongs to another company")]
    OwnedByAnotherCompany,
}

impl ChargerError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'static> {
        match self {
            Self::OwnedByAnotherCompany => RefusalKind::Conflict,
        }
    }
}

impl Aggregate for Charger {
    const CATEGORY: &'static str = "charger";
    type Error = ChargerError;
    type State = ChargerState;
    type Command = ChargerCommand;
    type Event = ChargerEvent;

    fn decide(state: &ChargerState, command: ChargerCommand) -> Result<Vec<ChargerEvent>, ChargerError> {
        decide::decide(state, command)
    }

    fn evolve(mut state: ChargerState, event: &ChargerEvent) -> ChargerState {
        match event {
            ChargerEvent::Connected(c) => {
                state.company_id = Some(CompanyId(c.company_id));
                state.connection_id = Some(c.connection_id);
                state.protocol = Some(c.protocol);
            }
            ChargerEvent::Disconnected(d) => {
                if state.connection_id == Some(d.connection_id) {
                    state.connection_id = None;
                }
            }
            ChargerEvent::Booted(_) => {}
            ChargerEvent::ConnectorStatusChanged(s) => {
                state.connector_status.insert((s.evse_id.unwrap_or(0), s.connector_id), s.status.clone());
            }
            ChargerEvent::TransactionStarted(t) => {
                if let Ok(n) = t.transaction_id.parse::<i64>() {
                    state.last_numeric_transaction_id = state.last_numeric_transaction_id.max(n);
                }
                state.active.insert(
                    t.transaction_id.clone(),
                    ActiveTransaction {
                        evse_id: t.evse_id,
                        connector_id: t.connector_id,
                        id_tag: t.id_tag.clone(),
                        meter_start_wh: t.meter_start_wh,
                        started_at: t.started_at,
                        last_energy_wh: t.meter_start_wh,
                        last_seq_no: t.seq_no,
                    },
                );
            }
            ChargerEvent::TransactionUpdated(u) => note_seq_no(&mut state, &u.transaction_id, u.seq_no),
            ChargerEvent::MeterValuesRecorded(m) => {
                if let Some(tx) = m.transaction_id.as_ref().and_then(|id| state.active.get_mut(id)) {
                    for e in m.samples.iter().filter_map(|s| s.energy_wh) {
                        tx.last_energy_wh = Some(tx.last_energy_wh.map_or(e, |last| last.max(e)));
                    }
                }
            }
            ChargerEvent::MeterAnomalyDetected(_) => {}
            ChargerEvent::SequenceGapDetected(g) => note_seq_no(&mut state, &g.transaction_id, g.received_seq_no),
            ChargerEvent::TransactionEnded(t) => {
                state.active.remove(&t.transaction_id);
                state.finished.insert(t.transaction_id.clone());
            }
        }
        state
    }
}

fn note_seq_no(state: &mut ChargerState, transaction_id: &str, seq_no: i64) {
    if let Some(tx) = state.active.get_mut(transaction_id) {
        tx.last_seq_no = Some(tx.last_seq_no.map_or(seq_no, |s| s.max(seq_no)));
    }
}
