//! Given / when / then tests of the charger rules.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).single().unwrap_or_default()
}

fn sample(minutes: i64, wh: i64) -> MeterSample {
    MeterSample {
        timestamp: t0() + Duration::minutes(minutes),
        energy_wh: Some(wh),
        power_w: Some(7000),
        soc_percent: None,
    }
}

fn run(history: &mut Vec<ChargerEvent>, command: ChargerCommand) -> Vec<ChargerEvent> {
    let events = Charger::decide(&Charger::fold(history.iter()), command).unwrap_or_else(|e| panic!("{e}"));
    history.extend(events.clone());
    events
}

fn types(events: &[ChargerEvent]) -> Vec<&'static str> {
    use crate::DomainEvent;
    events.iter().map(|e| e.event_type()).collect()
}

fn start16() -> ChargerCommand {
    ChargerCommand::StartTransaction { connector_id: 1, id_tag: "TAG1".into(), meter_start_wh: 1000, timestamp: t0() }
}

#[test]
fn a_16_start_gets_the_next_integer_id_and_a_repeat_gets_none() {
    let mut h = vec![];
    let first = run(&mut h, start16());
    assert!(matches!(&first[0], ChargerEvent::TransactionStarted(t) if t.transaction_id == "1"));
    assert!(run(&mut h, start16()).is_empty(), "the same start twice has no second effect");
    assert_eq!(Charger::fold(h.iter()).repeated_start(1, "TAG1", t0()), Some("1"));
    let other =
        ChargerCommand::StartTransaction { connector_id: 2, id_tag: "TAG2".into(), meter_start_wh: 0, timestamp: t0() };
    assert!(matches!(&run(&mut h, other)[0], ChargerEvent::TransactionStarted(t) if t.transaction_id == "2"));
}

#[test]
fn meter_values_must_rise_inside_the_window() {
    let mut h = vec![];
    run(&mut h, start16());
    let events = run(
        &mut h,
        ChargerCommand::RecordMeterValues {
            transaction_id: Some("1".into()),
            evse_id: None,
            connector_id: Some(1),
            samples: vec![sample(1, 1500), sample(2, 1400), sample(-60, 1600), sample(500, 1700), sample(3, 2000)],
            now: t0() + Duration::minutes(3),
        },
    );
    assert_eq!(
        types(&events),
        [
            "charger.meter_anomaly_detected",
            "charger.meter_anomaly_detected",
            "charger.meter_anomaly_detected",
            "charger.meter_values_recorded"
        ]
    );
    let kinds: Vec<_> = events
        .iter()
        .filter_map(|e| if let ChargerEvent::MeterAnomalyDetected(a) = e { Some(a.kind.as_str()) } else { None })
        .collect();
    assert_eq!(kinds, ["energy_decreased", "before_transaction_start", "after_transaction_end"]);
    let ChargerEvent::MeterValuesRecorded(m) = &events[3] else { panic!() };
    assert_eq!(m.samples.iter().map(|s| s.energy_wh).collect::<Vec<_>>(), [Some(1500), Some(2000)]);
}

#[test]
fn a_16_stop_ends_once_with_the_energy_delivered() {
    let mut h = vec![];
    run(&mut h, start16());
    let stop = || ChargerCommand::StopTransaction {
        transaction_id: "1".into(),
        meter_stop_wh: 8500,
        timestamp: t0() + Duration::hours(1),
        reason: Some("Local".into()),
        samples: vec![],
        now: t0() + Duration::hours(1),
    };
    let events = run(&mut h, stop());
    assert!(matches!(&events[0], ChargerEvent::TransactionEnded(t) if t.energy_wh == Some(7500)));
    assert!(run(&mut h, stop()).is_empty(), "a repeated stop has no second effect");
    assert!(Charger::fold(h.iter()).active.is_empty());
}

fn tx_event(kind: TransactionEventKind, seq_no: i64, samples: Vec<MeterSample>) -> ChargerCommand {
    ChargerCommand::TransactionEvent {
        kind,
        transaction_id: "tx-abc".into(),
        seq_no,
        evse_id: Some(1),
        connector_id: Some(1),
        id_tag: Some("TOKEN".into()),
        remote_start_id: None,
        samples,
        timestamp: t0() + Duration::minutes(seq_no),
        stopped_reason: if kind == TransactionEventKind::Ended { Some("EVDisconnected".into()) } else { None },
        now: t0() + Duration::minutes(30),
    }
}

#[test]
fn a_201_transaction_with_a_seq_no_gap() {
    let mut h = vec![];
    let started = run(&mut h, tx_event(TransactionEventKind::Started, 0, vec![sample(0, 100)]));
    assert_eq!(types(&started), ["charger.transaction_started"]);
    let updated = run(&mut h, tx_event(TransactionEventKind::Updated, 1, vec![sample(1, 600)]));
    assert_eq!(types(&updated), ["charger.transaction_updated", "charger.meter_values_recorded"]);
    let gap = run(&mut h, tx_event(TransactionEventKind::Updated, 4, vec![sample(4, 900)]));
    assert_eq!(
        types(&gap),
        ["charger.sequence_gap_detected", "charger.transaction_updated", "charger.meter_values_recorded"]
    );
    let ended = run(&mut h, tx_event(TransactionEventKind::Ended, 5, vec![sample(5, 1200)]));
    assert!(
        matches!(ended.last(), Some(ChargerEvent::TransactionEnded(t)) if t.energy_wh == Some(1100) && t.meter_stop_wh == Some(1200))
    );
    assert!(run(&mut h, tx_event(TransactionEventKind::Ended, 5, vec![])).is_empty());
}

#[test]
fn an_offline_queued_update_before_its_start_opens_the_transaction_and_notes_the_gap() {
    let mut h = vec![];
    let events = run(&mut h, tx_event(TransactionEventKind::Updated, 2, vec![sample(2, 400)]));
    assert_eq!(
        types(&events),
        ["charger.sequence_gap_detected", "charger.transaction_started", "charger.meter_values_recorded"]
    );
}

#[test]
fn connections_belong_to_one_company_and_stale_disconnects_change_nothing() {
    let company = crate::CompanyId(Uuid::from_u128(7));
    let (c1, c2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let connect = |c| ChargerCommand::Connect {
        company_id: company,
        connection_id: c,
        protocol: crate::terminal::OcppVersion::V16,
        gateway_id: Uuid::nil(),
        at: t0(),
    };
    let mut h = vec![];
    run(&mut h, connect(c1));
    run(&mut h, connect(c2));
    assert!(
        run(&mut h, ChargerCommand::Disconnect { connection_id: c1, reason: "replaced".into(), at: t0() }).is_empty()
    );
    assert_eq!(Charger::fold(h.iter()).connection_id, Some(c2));
    let other = ChargerCommand::Connect {
        company_id: crate::CompanyId(Uuid::from_u128(8)),
        connection_id: c1,
        protocol: crate::terminal::OcppVersion::V16,
        gateway_id: Uuid::nil(),
        at: t0(),
    };
    // Then another company's connection is refused for what it is.
    let err = Charger::decide(&Charger::fold(h.iter()), other).unwrap_err();
    assert!(matches!(err, ChargerError::OwnedByAnotherCompany), "{err:?}");
}
