//! The rules of the charger aggregate.

use chrono::{DateTime, Duration, Utc};

use super::{
    ActiveTransaction, ChargerCommand, ChargerConnected, ChargerDisconnected, ChargerError, ChargerEvent, ChargerState,
    MeterAnomalyDetected, MeterSample, MeterValuesRecorded, SequenceGapDetected, TransactionEnded,
    TransactionEventKind, TransactionStarted, TransactionUpdated,
};

/// Clock skew tolerated between charger and platform.
const SKEW: Duration = Duration::minutes(5);

pub(super) fn decide(state: &ChargerState, command: ChargerCommand) -> Result<Vec<ChargerEvent>, ChargerError> {
    let mut out = Vec::new();
    match command {
        ChargerCommand::Connect { company_id, connection_id, protocol, gateway_id, at } => {
            if state.company_id.is_some_and(|c| c != company_id) {
                return Err(ChargerError::OwnedByAnotherCompany);
            }
            out.push(ChargerEvent::Connected(ChargerConnected {
                connection_id,
                protocol,
                company_id: company_id.as_uuid(),
                gateway_id,
                at,
            }));
        }
        ChargerCommand::Disconnect { connection_id, reason, at } => {
            // A stale connection (already replaced) has nothing left to close.
            if state.connection_id == Some(connection_id) {
                out.push(ChargerEvent::Disconnected(ChargerDisconnected { connection_id, reason, at }));
            }
        }
        ChargerCommand::Boot(booted) => out.push(ChargerEvent::Booted(booted)),
        ChargerCommand::ReportStatus(status) => out.push(ChargerEvent::ConnectorStatusChanged(status)),
        ChargerCommand::StartTransaction { connector_id, id_tag, meter_start_wh, timestamp } => {
            if state.repeated_start(connector_id, &id_tag, timestamp).is_none() {
                out.push(ChargerEvent::TransactionStarted(TransactionStarted {
                    transaction_id: (state.last_numeric_transaction_id + 1).to_string(),
                    evse_id: None,
                    connector_id: Some(connector_id),
                    id_tag: Some(id_tag),
                    meter_start_wh: Some(meter_start_wh),
                    remote_start_id: None,
                    seq_no: None,
                    started_at: timestamp,
                }));
            }
        }
        ChargerCommand::StopTransaction { transaction_id, meter_stop_wh, timestamp, reason, samples, now: _ } => {
            if state.finished.contains(&transaction_id) {
                return Ok(out); // a repeat: no second effect
            }
            let mut tx = state.active.get(&transaction_id).cloned();
            let mut stop = meter_stop_wh;
            if let Some(tx) = tx.as_mut() {
                record_samples(&transaction_id, tx, samples, timestamp + SKEW, None, None, &mut out);
                check_register(&transaction_id, tx, meter_stop_wh, timestamp, &mut out);
                // A stop register below what was measured is an anomaly: trust the measurements.
                stop = stop.max(tx.last_energy_wh.unwrap_or(stop));
            }
            out.push(ChargerEvent::TransactionEnded(TransactionEnded {
                energy_wh: tx
                    .as_ref()
                    .and_then(|t| t.meter_start_wh)
                    .and_then(|start| stop.checked_sub(start))
                    .map(|e| e.max(0)),
                transaction_id,
                meter_stop_wh: Some(stop),
                reason,
                seq_no: None,
                stopped_at: timestamp,
            }));
        }
        ChargerCommand::RecordMeterValues { transaction_id, evse_id, connector_id, samples, now } => {
            match transaction_id.as_ref().and_then(|id| state.active.get(id).map(|t| (id, t.clone()))) {
                Some((id, mut tx)) => record_samples(id, &mut tx, samples, now + SKEW, evse_id, connector_id, &mut out),
                None if transaction_id.as_ref().is_some_and(|id| state.finished.contains(id)) => {
                    let id = transaction_id.unwrap_or_default();
                    for sample in samples {
                        out.push(anomaly(&id, "after_transaction_end", sample, "the transaction has ended".into()));
                    }
                }
                None if !samples.is_empty() => {
                    out.push(ChargerEvent::MeterValuesRecorded(MeterValuesRecorded {
                        transaction_id,
                        evse_id,
                        connector_id,
                        samples,
                    }));
                }
                None => {}
            }
        }
        ChargerCommand::TransactionEvent {
            kind,
            transaction_id,
            seq_no,
            evse_id,
            connector_id,
            id_tag,
            remote_start_id,
            samples,
            timestamp,
            stopped_reason,
            now,
        } => {
            if state.finished.contains(&transaction_id) {
                return Ok(out); // late or repeated message of an ended transaction
            }
            let mut samples = samples;
            let mut tx = match state.active.get(&transaction_id) {
                Some(tx) => {
                    if let Some(last) = tx.last_seq_no {
                        if seq_no > last + 1 {
                            out.push(ChargerEvent::SequenceGapDetected(SequenceGapDetected {
                                transaction_id: transaction_id.clone(),
                                expected_seq_no: last + 1,
                                received_seq_no: seq_no,
                            }));
                        }
                    }
                    tx.clone()
                }
                None => {
                    // Started (or the first message we get of it: offline-queued
                    // messages may arrive after an Updated or with Ended).
                    let meter_start_wh = if kind == TransactionEventKind::Started {
                        samples.first().and_then(|s| s.energy_wh)
                    } else {
                        None
                    };
                    if seq_no > 0 && kind != TransactionEventKind::Started {
                        out.push(ChargerEvent::SequenceGapDetected(SequenceGapDetected {
                            transaction_id: transaction_id.clone(),
                            expected_seq_no: 0,
                            received_seq_no: seq_no,
                        }));
                    }
                    let started = TransactionStarted {
                        transaction_id: transaction_id.clone(),
                        evse_id,
                        connector_id,
                        id_tag: id_tag.clone(),
                        meter_start_wh,
                        remote_start_id,
                        seq_no: Some(seq_no),
                        started_at: timestamp,
                    };
                    let tx = ActiveTransaction {
                        evse_id,
                        connector_id,
                        id_tag,
                        meter_start_wh,
                        started_at: timestamp,
                        last_energy_wh: meter_start_wh,
                        last_seq_no: Some(seq_no),
                    };
                    out.push(ChargerEvent::TransactionStarted(started));
                    if kind == TransactionEventKind::Started && meter_start_wh.is_some() {
                        samples.remove(0);
                    }
                    tx
                }
            };
            match kind {
                TransactionEventKind::Started | TransactionEventKind::Updated => {
                    if state.active.contains_key(&transaction_id) {
                        out.push(ChargerEvent::TransactionUpdated(TransactionUpdated {
                            transaction_id: transaction_id.clone(),
                            seq_no,
                            trigger_reason: None,
                            timestamp,
                        }));
                    }
                    record_samples(&transaction_id, &mut tx, samples, now + SKEW, evse_id, connector_id, &mut out);
                }
                TransactionEventKind::Ended => {
                    record_samples(
                        &transaction_id,
                        &mut tx,
                        samples,
                        timestamp + SKEW,
                        evse_id,
                        connector_id,
                        &mut out,
                    );
                    out.push(ChargerEvent::TransactionEnded(TransactionEnded {
                        energy_wh: tx
                            .meter_start_wh
                            .zip(tx.last_energy_wh)
                            .and_then(|(start, stop)| stop.checked_sub(start))
                            .map(|e| e.max(0)),
                        transaction_id,
                        meter_stop_wh: tx.last_energy_wh,
                        reason: stopped_reason,
                        seq_no: Some(seq_no),
                        stopped_at: timestamp,
                    }));
                }
            }
        }
    }
    Ok(out)
}

fn anomaly(transaction_id: &str, kind: &str, sample: MeterSample, detail: String) -> ChargerEvent {
    ChargerEvent::MeterAnomalyDetected(MeterAnomalyDetected {
        transaction_id: transaction_id.to_owned(),
        kind: kind.into(),
        sample,
        detail,
    })
}

/// Accepts the samples that fall inside the transaction's window and do not
/// lower the energy register; records the others as anomalies.
fn record_samples(
    transaction_id: &str,
    tx: &mut ActiveTransaction,
    samples: Vec<MeterSample>,
    window_end: DateTime<Utc>,
    evse_id: Option<i64>,
    connector_id: Option<i64>,
    out: &mut Vec<ChargerEvent>,
) {
    let mut accepted = Vec::new();
    for sample in samples {
        if sample.timestamp < tx.started_at - SKEW {
            let detail = format!("sampled at {} but the transaction started at {}", sample.timestamp, tx.started_at);
            out.push(anomaly(transaction_id, "before_transaction_start", sample, detail));
        } else if sample.timestamp > window_end {
            let detail = format!("sampled at {}, after the end of the window {}", sample.timestamp, window_end);
            out.push(anomaly(transaction_id, "after_transaction_end", sample, detail));
        } else if let (Some(e), Some(last)) = (sample.energy_wh, tx.last_energy_wh) {
            if e < last {
                let detail = format!("energy register {e} Wh is below the previous {last} Wh");
                out.push(anomaly(transaction_id, "energy_decreased", sample, detail));
            } else {
                tx.last_energy_wh = Some(e);
                accepted.push(sample);
            }
        } else {
            if sample.energy_wh.is_some() {
                tx.last_energy_wh = sample.energy_wh;
            }
            accepted.push(sample);
        }
    }
    if !accepted.is_empty() {
        out.push(ChargerEvent::MeterValuesRecorded(MeterValuesRecorded {
            transaction_id: Some(transaction_id.to_owned()),
            evse_id: evse_id.or(tx.evse_id),
            connector_id: connector_id.or(tx.connector_id),
            samples: accepted,
        }));
    }
}

/// The stop register must not be below what was already measured.
fn check_register(
    transaction_id: &str,
    tx: &mut ActiveTransaction,
    meter_stop_wh: i64,
    at: DateTime<Utc>,
    out: &mut Vec<ChargerEvent>,
) {
    if let Some(last) = tx.last_energy_wh {
        if meter_stop_wh < last {
            let sample =
                MeterSample { timestamp: at, energy_wh: Some(meter_stop_wh), power_w: None, soc_percent: None };
            out.push(anomaly(
                transaction_id,
                "energy_decreased",
                sample,
                format!("meterStop {meter_stop_wh} Wh is below {last} Wh"),
            ));
            return;
        }
    }
    tx.last_energy_wh = Some(meter_stop_wh);
}
