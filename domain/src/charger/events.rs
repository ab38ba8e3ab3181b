//! Events of chargers: connection, boot, connector status, transactions and
//! meter readings (stream `charger-<id>`), and every OCPP frame in and out
//! (stream `ocpp-<id>`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{terminal::OcppVersion, DomainEvent};

/// One meter sample, normalised: energy in Wh, power in W, state of charge in %.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterSample {
    /// When the charger measured it.
    pub timestamp: DateTime<Utc>,
    /// Energy.Active.Import.Register, in Wh.
    pub energy_wh: Option<i64>,
    /// Power.Active.Import, in W.
    pub power_w: Option<i64>,
    /// State of charge, in percent.
    pub soc_percent: Option<i64>,
}

/// Events of a charger's domain stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum ChargerEvent {
    /// See [`ChargerConnected`].
    #[serde(rename = "charger.connected")]
    Connected(ChargerConnected),
    /// See [`ChargerDisconnected`].
    #[serde(rename = "charger.disconnected")]
    Disconnected(ChargerDisconnected),
    /// See [`ChargerBooted`].
    #[serde(rename = "charger.booted")]
    Booted(ChargerBooted),
    /// See [`ConnectorStatusChanged`].
    #[serde(rename = "charger.connector_status_changed")]
    ConnectorStatusChanged(ConnectorStatusChanged),
    /// See [`TransactionStarted`].
    #[serde(rename = "charger.transaction_started")]
    TransactionStarted(TransactionStarted),
    /// See [`TransactionUpdated`].
    #[serde(rename = "charger.transaction_updated")]
    TransactionUpdated(TransactionUpdated),
    /// See [`MeterValuesRecorded`].
    #[serde(rename = "charger.meter_values_recorded")]
    MeterValuesRecorded(MeterValuesRecorded),
    /// See [`MeterAnomalyDetected`].
    #[serde(rename = "charger.meter_anomaly_detected")]
    MeterAnomalyDetected(MeterAnomalyDetected),
    /// See [`SequenceGapDetected`].
    #[serde(rename = "charger.sequence_gap_detected")]
    SequenceGapDetected(SequenceGapDetected),
    /// See [`TransactionEnded`].
    #[serde(rename = "charger.transaction_ended")]
    TransactionEnded(TransactionEnded),
}

/// A charger opened a WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargerConnected {
    /// This connection.
    pub connection_id: Uuid,
    /// Negotiated protocol.
    pub protocol: OcppVersion,
    /// Owning company (from the terminal registration).
    pub company_id: Uuid,
    /// Gateway instance holding the connection.
    pub gateway_id: Uuid,
    /// Gateway clock when the WebSocket connection was accepted.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// The connection closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargerDisconnected {
    /// The connection that closed.
    pub connection_id: Uuid,
    /// Why (closed by the charger, replaced, ping timeout, frame too large, shutdown).
    pub reason: String,
    /// Gateway clock when the connection closed.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// BootNotification accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargerBooted {
    /// Vendor name the charger reported (1.6 chargePointVendor, 2.0.1 vendorName); empty if absent.
    #[schemars(description = "Vendor.")]
    pub vendor: String,
    /// Model the charger reported (1.6 chargePointModel, 2.0.1 model); empty if absent.
    #[schemars(description = "Model.")]
    pub model: String,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Firmware version.
    pub firmware_version: Option<String>,
    /// 2.0.1 boot reason.
    pub reason: Option<String>,
    /// Heartbeat interval we told the charger, in seconds.
    pub heartbeat_interval_s: i64,
    /// Gateway clock when the BootNotification arrived.
    #[schemars(description = "When.")]
    pub at: DateTime<Utc>,
}

/// A connector's status as the charger reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorStatusChanged {
    /// EVSE (2.0.1; 1.6 connectors have none). Connector 0 in 1.6 is the whole charger.
    pub evse_id: Option<i64>,
    /// Connector number as reported; 0 in 1.6 means the whole charger.
    #[schemars(description = "Connector.")]
    pub connector_id: i64,
    /// OCPP status (1.6 ChargePointStatus or 2.0.1 ConnectorStatus).
    pub status: String,
    /// 1.6 error code (NoError, GroundFailure, …).
    pub error_code: Option<String>,
    /// Free text from the charger.
    pub info: Option<String>,
    /// When the charger says it changed.
    pub timestamp: DateTime<Utc>,
}

/// A transaction began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionStarted {
    /// Transaction id: 1.6 integers as decimal text, 2.0.1 strings as sent.
    pub transaction_id: String,
    /// EVSE (2.0.1).
    pub evse_id: Option<i64>,
    /// Connector the transaction runs on, when the charger said.
    #[schemars(description = "Connector.")]
    pub connector_id: Option<i64>,
    /// Authorising id tag / token.
    pub id_tag: Option<String>,
    /// Meter register at start, Wh.
    pub meter_start_wh: Option<i64>,
    /// 2.0.1 remoteStartId, linking a RequestStartTransaction.
    pub remote_start_id: Option<i64>,
    /// 2.0.1 seqNo of the message that started it.
    pub seq_no: Option<i64>,
    /// When the charger says it started.
    pub started_at: DateTime<Utc>,
}

/// A 2.0.1 TransactionEvent Updated arrived (meter samples, if any, follow as
/// `charger.meter_values_recorded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionUpdated {
    /// Id of the active transaction this update belongs to (2.0.1 string id).
    #[schemars(description = "Transaction.")]
    pub transaction_id: String,
    /// seqNo of the message.
    pub seq_no: i64,
    /// triggerReason as sent.
    pub trigger_reason: Option<String>,
    /// When the charger says it happened.
    pub timestamp: DateTime<Utc>,
}

/// Meter samples of a transaction (or of a connector outside one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterValuesRecorded {
    /// Transaction, if any.
    pub transaction_id: Option<String>,
    /// EVSE (2.0.1).
    pub evse_id: Option<i64>,
    /// Connector the samples belong to, when known.
    #[schemars(description = "Connector.")]
    pub connector_id: Option<i64>,
    /// Samples accepted, in order.
    pub samples: Vec<MeterSample>,
}

/// A sample that cannot be right: recorded, not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterAnomalyDetected {
    /// Id of the transaction whose window or register the sample broke.
    #[schemars(description = "Transaction.")]
    pub transaction_id: String,
    /// `energy_decreased`, `before_transaction_start` or `after_transaction_end`.
    pub kind: String,
    /// The sample.
    pub sample: MeterSample,
    /// What it was compared with.
    pub detail: String,
}

/// 2.0.1 TransactionEvent seqNo skipped values: messages were lost or are late.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequenceGapDetected {
    /// Id of the 2.0.1 transaction whose seqNo sequence has the gap.
    #[schemars(description = "Transaction.")]
    pub transaction_id: String,
    /// The seqNo we expected.
    pub expected_seq_no: i64,
    /// The seqNo we got.
    pub received_seq_no: i64,
}

/// A transaction ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransactionEnded {
    /// Id of the transaction that ended; a repeated stop for it has no second effect.
    #[schemars(description = "Transaction.")]
    pub transaction_id: String,
    /// Meter register at stop, Wh.
    pub meter_stop_wh: Option<i64>,
    /// Energy delivered (stop − start), Wh, when both are known.
    pub energy_wh: Option<i64>,
    /// Stop reason as the charger gave it.
    pub reason: Option<String>,
    /// 2.0.1 seqNo of the message that ended it.
    pub seq_no: Option<i64>,
    /// When the charger says it stopped.
    pub stopped_at: DateTime<Utc>,
}

impl DomainEvent for ChargerEvent {
    const TYPES: &'static [&'static str] = &[
        "charger.connected",
        "charger.disconnected",
        "charger.booted",
        "charger.connector_status_changed",
        "charger.transaction_started",
        "charger.transaction_updated",
        "charger.meter_values_recorded",
        "charger.meter_anomaly_detected",
        "charger.sequence_gap_detected",
        "charger.transaction_ended",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Connected(_) => "charger.connected",
            Self::Disconnected(_) => "charger.disconnected",
            Self::Booted(_) => "charger.booted",
            Self::ConnectorStatusChanged(_) => "charger.connector_status_changed",
            Self::TransactionStarted(_) => "charger.transaction_started",
            Self::TransactionUpdated(_) => "charger.transaction_updated",
            Self::MeterValuesRecorded(_) => "charger.meter_values_recorded",
            Self::MeterAnomalyDetected(_) => "charger.meter_anomaly_detected",
            Self::SequenceGapDetected(_) => "charger.sequence_gap_detected",
            Self::TransactionEnded(_) => "charger.transaction_ended",
        }
    }
}

/// Direction of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the charger.
    In,
    /// To the charger.
    Out,
}

/// Why a received frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrameRejection {
    /// OCPP-J error code sent back.
    pub code: String,
    /// Explanation sent back.
    pub description: String,
}

/// Every OCPP frame, in and out, as it went over the wire (stream `ocpp-<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum OcppFrameEvent {
    /// See [`OcppFrame`].
    #[serde(rename = "ocpp.frame_received")]
    Received(OcppFrame),
    /// See [`OcppFrame`].
    #[serde(rename = "ocpp.frame_sent")]
    Sent(OcppFrame),
    /// See [`super::FrameRejectionsSummarized`].
    #[serde(rename = "ocpp.frame_rejections_summarized")]
    RejectionsSummarized(super::FrameRejectionsSummarized),
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OcppFrame {
    /// Connection it travelled on.
    pub connection_id: Uuid,
    /// Protocol of the connection.
    pub protocol: OcppVersion,
    /// In or out.
    pub direction: Direction,
    /// 2 CALL, 3 CALLRESULT, 4 CALLERROR (absent when unparseable).
    pub message_type_id: Option<i64>,
    /// Message id (absent when unparseable).
    pub message_id: Option<String>,
    /// Action of a CALL (or of the CALL a result answers).
    pub action: Option<String>,
    /// The frame exactly as received or sent.
    pub raw: String,
    /// Set when a received frame was refused.
    pub rejection: Option<FrameRejection>,
    /// Receive or send time.
    pub at: DateTime<Utc>,
}

impl DomainEvent for OcppFrameEvent {
    const TYPES: &'static [&'static str] =
        &["ocpp.frame_received", "ocpp.frame_sent", "ocpp.frame_rejections_summarized"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Received(_) => "ocpp.frame_received",
            Self::Sent(_) => "ocpp.frame_sent",
            Self::RejectionsSummarized(_) => "ocpp.frame_rejections_summarized",
        }
    }
}
