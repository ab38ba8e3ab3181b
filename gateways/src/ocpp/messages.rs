//! From OCPP 1.6 and 2.0.1 CALLs to version-neutral charger commands, and the
//! CALLRESULT each version expects back. Payloads arrive already validated
//! against the official schemas, so missing required fields cannot happen here;
//! values are still read defensively.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::{
    charger::{ChargerBooted, ChargerCommand, ChargerState, ConnectorStatusChanged, MeterSample, TransactionEventKind},
    terminal::OcppVersion,
};
use rust_decimal::{prelude::ToPrimitive, Decimal, RoundingStrategy};
use serde_json::{json, Value};

use super::frame::ErrorCode;

/// Actions a charger may send that we handle.
const FROM_CHARGER_16: &[&str] = &[
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
];
const FROM_CHARGER_201: &[&str] = &[
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "TransactionEvent",
    "MeterValues",
    "NotifyReport",
    "NotifyEvent",
    "FirmwareStatusNotification",
    "SecurityEventNotification",
    "DataTransfer",
];

/// Whether we handle this action from a charger.
pub fn handled(version: OcppVersion, action: &str) -> bool {
    match version {
        OcppVersion::V16 => FROM_CHARGER_16.contains(&action),
        OcppVersion::V201 => FROM_CHARGER_201.contains(&action),
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key).and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

/// Largest meter reading accepted (1 TWh in Wh); registers stay far from overflow.
pub const MAX_READING: i64 = 1_000_000_000_000;

/// A register value within 0..=MAX_READING.
fn register(v: &Value, key: &str) -> Result<i64, (ErrorCode, String)> {
    int(v, key).filter(|n| (0..=MAX_READING).contains(n)).ok_or_else(|| bad(key))
}

fn bad(field: &str) -> (ErrorCode, String) {
    (ErrorCode::PropertyConstraintViolation, format!("{field} is not a valid value"))
}

/// `currentTime` as OCPP wants it.
pub fn now_text(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What a CALL asks of the charger aggregate (`None`: nothing beyond the frame).
pub fn translate(
    version: OcppVersion,
    action: &str,
    p: &Value,
    now: DateTime<Utc>,
    heartbeat_s: i64,
) -> Result<Option<ChargerCommand>, (ErrorCode, String)> {
    let v16 = version == OcppVersion::V16;
    Ok(match action {
        "BootNotification" if v16 => Some(ChargerCommand::Boot(ChargerBooted {
            vendor: text(p, "chargePointVendor").unwrap_or_default(),
            model: text(p, "chargePointModel").unwrap_or_default(),
            serial_number: text(p, "chargePointSerialNumber").or_else(|| text(p, "chargeBoxSerialNumber")),
            firmware_version: text(p, "firmwareVersion"),
            reason: None,
            heartbeat_interval_s: heartbeat_s,
            at: now,
        })),
        "BootNotification" => {
            let station = p.get("chargingStation").cloned().unwrap_or_default();
            Some(ChargerCommand::Boot(ChargerBooted {
                vendor: text(&station, "vendorName").unwrap_or_default(),
                model: text(&station, "model").unwrap_or_default(),
                serial_number: text(&station, "serialNumber"),
                firmware_version: text(&station, "firmwareVersion"),
                reason: text(p, "reason"),
                heartbeat_interval_s: heartbeat_s,
                at: now,
            }))
        }
        "StatusNotification" if v16 => Some(ChargerCommand::ReportStatus(ConnectorStatusChanged {
            evse_id: None,
            connector_id: int(p, "connectorId").unwrap_or_default(),
            status: text(p, "status").unwrap_or_default(),
            error_code: text(p, "errorCode"),
            info: text(p, "info").or_else(|| text(p, "vendorErrorCode")),
            timestamp: time(p, "timestamp").unwrap_or(now),
        })),
        "StatusNotification" => Some(ChargerCommand::ReportStatus(ConnectorStatusChanged {
            evse_id: int(p, "evseId"),
            connector_id: int(p, "connectorId").unwrap_or_default(),
            status: text(p, "connectorStatus").unwrap_or_default(),
            error_code: None,
            info: None,
            timestamp: time(p, "timestamp").unwrap_or(now),
        })),
        "StartTransaction" => Some(ChargerCommand::StartTransaction {
            connector_id: int(p, "connectorId").unwrap_or_default(),
            id_tag: text(p, "idTag").unwrap_or_default(),
            meter_start_wh: register(p, "meterStart")?,
            timestamp: time(p, "timestamp").ok_or_else(|| bad("timestamp"))?,
        }),
        "StopTransaction" => Some(ChargerCommand::StopTransaction {
            transaction_id: int(p, "transactionId").unwrap_or_default().to_string(),
            meter_stop_wh: register(p, "meterStop")?,
            timestamp: time(p, "timestamp").ok_or_else(|| bad("timestamp"))?,
            reason: text(p, "reason"),
            samples: samples(version, p.get("transactionData"))?,
            now,
        }),
        "MeterValues" => Some(ChargerCommand::RecordMeterValues {
            transaction_id: if v16 { int(p, "transactionId").map(|t| t.to_string()) } else { None },
            evse_id: if v16 { None } else { int(p, "evseId") },
            connector_id: if v16 { int(p, "connectorId") } else { None },
            samples: samples(version, p.get("meterValue"))?,
            now,
        }),
        "TransactionEvent" => {
            let info = p.get("transactionInfo").cloned().unwrap_or_default();
            let kind = match text(p, "eventType").as_deref() {
                Some("Started") => TransactionEventKind::Started,
                Some("Updated") => TransactionEventKind::Updated,
                Some("Ended") => TransactionEventKind::Ended,
                _ => return Err(bad("eventType")),
            };
            let evse = p.get("evse");
            Some(ChargerCommand::TransactionEvent {
                kind,
                transaction_id: text(&info, "transactionId").unwrap_or_default(),
                seq_no: int(p, "seqNo").unwrap_or_default(),
                evse_id: evse.and_then(|e| int(e, "id")),
                connector_id: evse.and_then(|e| int(e, "connectorId")),
                id_tag: p.get("idToken").and_then(|t| text(t, "idToken")),
                remote_start_id: int(&info, "remoteStartId"),
                samples: samples(version, p.get("meterValue"))?,
                timestamp: time(p, "timestamp").ok_or_else(|| bad("timestamp"))?,
                stopped_reason: text(&info, "stoppedReason"),
                now,
            })
        }
        _ => None,
    })
}

/// The CALLRESULT payload, computed after the command (if any) was decided.
pub fn respond(
    version: OcppVersion,
    action: &str,
    p: &Value,
    state: &ChargerState,
    now: DateTime<Utc>,
    heartbeat_s: i64,
) -> Value {
    let v16 = version == OcppVersion::V16;
    let accepted_16 = json!({"status": "Accepted"});
    match action {
        "BootNotification" => json!({"status": "Accepted", "currentTime": now_text(now), "interval": heartbeat_s}),
        "Heartbeat" => json!({"currentTime": now_text(now)}),
        "Authorize" if v16 => json!({"idTagInfo": accepted_16}),
        "Authorize" => json!({"idTokenInfo": {"status": "Accepted"}}),
        "StartTransaction" => {
            let id = state
                .repeated_start(
                    int(p, "connectorId").unwrap_or_default(),
                    &text(p, "idTag").unwrap_or_default(),
                    time(p, "timestamp").unwrap_or(now),
                )
                .and_then(|id| id.parse::<i64>().ok())
                .unwrap_or(state.last_numeric_transaction_id);
            json!({"transactionId": id, "idTagInfo": accepted_16})
        }
        "StopTransaction" if p.get("idTag").is_some() => json!({"idTagInfo": accepted_16}),
        "TransactionEvent" if p.get("idToken").is_some() => json!({"idTokenInfo": {"status": "Accepted"}}),
        // We know no vendor extensions.
        "DataTransfer" => json!({"status": "UnknownVendorId"}),
        _ => json!({}),
    }
}

/// Normalises meter values of either version into samples: energy in Wh, power
/// in W, state of charge in %; per-phase values and signed data are skipped.
fn samples(version: OcppVersion, meter_values: Option<&Value>) -> Result<Vec<MeterSample>, (ErrorCode, String)> {
    let mut out = Vec::new();
    for mv in meter_values.and_then(Value::as_array).into_iter().flatten() {
        let timestamp = time(mv, "timestamp").ok_or_else(|| bad("meterValue.timestamp"))?;
        let mut sample = MeterSample { timestamp, energy_wh: None, power_w: None, soc_percent: None };
        for sv in mv.get("sampledValue").and_then(Value::as_array).into_iter().flatten() {
            if sv.get("phase").is_some() || text(sv, "format").as_deref() == Some("SignedData") {
                continue;
            }
            let measurand = text(sv, "measurand").unwrap_or_else(|| "Energy.Active.Import.Register".into());
            let (raw, unit, multiplier) = match version {
                OcppVersion::V16 => (text(sv, "value").unwrap_or_default(), text(sv, "unit"), 0),
                OcppVersion::V201 => {
                    let uom = sv.get("unitOfMeasure");
                    let raw = sv.get("value").map(Value::to_string).unwrap_or_default();
                    (raw, uom.and_then(|u| text(u, "unit")), uom.and_then(|u| int(u, "multiplier")).unwrap_or(0))
                }
            };
            let Ok(mut value) = raw.parse::<Decimal>().or_else(|_| Decimal::from_scientific(&raw)) else {
                return Err(bad("sampledValue.value"));
            };
            if multiplier != 0 {
                let factor = Decimal::from(
                    10i64
                        .checked_pow(multiplier.unsigned_abs() as u32)
                        .ok_or_else(|| bad("unitOfMeasure.multiplier"))?,
                );
                value = if multiplier > 0 { value * factor } else { value / factor };
            }
            let scaled = |v: Decimal, kilo: bool| {
                let v = if kilo { v * Decimal::ONE_THOUSAND } else { v };
                v.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero).to_i64()
            };
            let out_of_range = || bad("sampledValue.value");
            match measurand.as_str() {
                "Energy.Active.Import.Register" => {
                    sample.energy_wh = Some(
                        scaled(value, unit.as_deref() == Some("kWh")).filter(|n| *n >= 0).ok_or_else(out_of_range)?,
                    )
                }
                "Power.Active.Import" => {
                    sample.power_w = Some(scaled(value, unit.as_deref() == Some("kW")).ok_or_else(out_of_range)?)
                }
                "SoC" => {
                    sample.soc_percent =
                        Some(scaled(value, false).filter(|n| (0..=100).contains(n)).ok_or_else(out_of_range)?)
                }
                _ => {}
            }
        }
        out.push(sample);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_values_of_both_versions_normalise_to_wh_and_w() {
        let v16 = json!([{"timestamp": "2026-11-21T10:00:00Z", "sampledValue": [
            {"value": "12.3456", "unit": "kWh"}, {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
            {"value": "55", "measurand": "SoC", "unit": "Percent"}, {"value": "230", "measurand": "Voltage", "phase": "L1"}]}]);
        let s = samples(OcppVersion::V16, Some(&v16)).unwrap_or_default();
        assert_eq!((s[0].energy_wh, s[0].power_w, s[0].soc_percent), (Some(12346), Some(7200), Some(55)));
        let v201 = json!([{"timestamp": "2026-11-21T10:00:00Z", "sampledValue": [
            {"value": 1.5, "unitOfMeasure": {"unit": "kWh", "multiplier": 0}}, {"value": 11, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W", "multiplier": 3}}]}]);
        let s = samples(OcppVersion::V201, Some(&v201)).unwrap_or_default();
        assert_eq!((s[0].energy_wh, s[0].power_w), (Some(1500), Some(11000)));
        let broken = json!([{"timestamp": "2026-11-21T10:00:00Z", "sampledValue": [{"value": "lots"}]}]);
        assert!(samples(OcppVersion::V16, Some(&broken)).is_err());
    }
}
