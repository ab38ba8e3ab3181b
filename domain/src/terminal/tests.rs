//! Given / when / then tests of the terminal rules. No runtime, no IO.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::DomainEvent;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().unwrap_or_default()
}

fn acme() -> CompanyId {
    CompanyId(Uuid::from_u128(1))
}

fn other() -> CompanyId {
    CompanyId(Uuid::from_u128(2))
}

fn register_cmd() -> RegisterTerminal {
    RegisterTerminal {
        company_id: acme(),
        terminal_id: TerminalId::parse("EVSE-001").unwrap_or_else(|e| panic!("{e}")),
        station_id: 10,
        vendor: "ABB".into(),
        model: "Terra 54".into(),
        ocpp_version: OcppVersion::V16,
        connectors: vec![
            Connector { id: 2, connector_type: ConnectorType::Type2, max_power_w: 22_000 },
            Connector { id: 1, connector_type: ConnectorType::CCS2, max_power_w: 50_000 },
        ],
        password_hash: Some("$argon2id$hash".into()),
        security_profile: None,
        now: now(),
    }
}

fn given(events: &[TerminalEvent]) -> TerminalState {
    Terminal::fold(events)
}

fn registered() -> Vec<TerminalEvent> {
    Terminal::decide(&TerminalState::default(), TerminalCommand::Register(register_cmd())).unwrap_or_default()
}

fn health(kind: HealthKind, severity: Severity, company: CompanyId) -> TerminalCommand {
    TerminalCommand::ReportHealth(ReportHealth {
        company_id: company,
        kind,
        severity,
        code: Some("GroundFailure".into()),
        message: None,
        occurred_at: now(),
        now: now(),
    })
}

fn status(to: TerminalStatus, company: CompanyId) -> TerminalCommand {
    TerminalCommand::ChangeStatus(ChangeStatus {
        company_id: company,
        status: to,
        reason: Some("maintenance".into()),
        now: now(),
    })
}

#[test]
fn registering_a_new_terminal_records_it_with_connectors_sorted() {
    let events = registered();
    assert_eq!(events.len(), 1);
    let TerminalEvent::Registered(r) = &events[0] else { panic!("expected registered, got {events:?}") };
    assert_eq!(r.connectors.iter().map(|c| c.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(r.company_id, acme());
    let TerminalState::Registered(t) = given(&events) else { panic!("not registered") };
    assert_eq!(t.status, TerminalStatus::Unavailable);
}

#[test]
fn registering_twice_is_refused_for_any_company() {
    let state = given(&registered());
    let mut cmd = register_cmd();
    cmd.company_id = other();
    let err = Terminal::decide(&state, TerminalCommand::Register(cmd)).unwrap_err();
    assert!(matches!(&err, TerminalError::AlreadyRegistered(id) if id.as_str() == "EVSE-001"), "{err:?}");
    assert_eq!(err.to_string(), "terminal EVSE-001 is already registered");
}

#[test]
fn invalid_registration_names_every_bad_field() {
    let mut cmd = register_cmd();
    cmd.station_id = 0;
    cmd.vendor = " ".into();
    cmd.connectors = vec![
        Connector { id: 1, connector_type: ConnectorType::CCS2, max_power_w: 0 },
        Connector { id: 1, connector_type: ConnectorType::CCS2, max_power_w: 1 },
    ];
    let Err(TerminalError::Invalid(fields)) =
        Terminal::decide(&TerminalState::default(), TerminalCommand::Register(cmd))
    else {
        panic!("expected validation error")
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, vec!["stationId", "vendor", "connectors[0].maxPowerW", "connectors[1].id"]);
}

#[test]
fn a_critical_fault_takes_the_terminal_out_of_service_and_recovery_brings_it_back() {
    let mut history = registered();
    let events = Terminal::decide(&given(&history), health(HealthKind::Fault, Severity::Critical, acme()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[1], TerminalEvent::StatusChanged(s) if s.to == TerminalStatus::Faulted && s.source == StatusSource::Health)
    );
    history.extend(events);

    let events = Terminal::decide(&given(&history), health(HealthKind::Recovery, Severity::Info, acme()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&events[1], TerminalEvent::StatusChanged(s) if s.from == TerminalStatus::Faulted && s.to == TerminalStatus::Available)
    );
}

#[test]
fn a_warning_fault_is_recorded_without_changing_status() {
    let events = Terminal::decide(&given(&registered()), health(HealthKind::Fault, Severity::Warning, acme()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type(), "terminal.health_reported");
}

#[test]
fn heartbeats_move_last_seen_forward_only() {
    let mut history = registered();
    let late = TerminalCommand::ReportHealth(ReportHealth {
        company_id: acme(),
        kind: HealthKind::Heartbeat,
        severity: Severity::Info,
        code: None,
        message: None,
        occurred_at: now() - Duration::hours(1),
        now: now(),
    });
    history.extend(
        Terminal::decide(&given(&history), health(HealthKind::Heartbeat, Severity::Info, acme())).unwrap_or_default(),
    );
    history.extend(Terminal::decide(&given(&history), late).unwrap_or_default());
    let TerminalState::Registered(t) = given(&history) else { panic!("not registered") };
    assert_eq!(t.last_seen_at, Some(now()));
}

#[test]
fn future_timestamps_are_refused() {
    let cmd = TerminalCommand::ReportHealth(ReportHealth {
        company_id: acme(),
        kind: HealthKind::Heartbeat,
        severity: Severity::Info,
        code: None,
        message: None,
        occurred_at: now() + Duration::minutes(6),
        now: now(),
    });
    assert!(matches!(Terminal::decide(&given(&registered()), cmd), Err(TerminalError::Invalid(_))));
}

#[test]
fn another_company_sees_not_found() {
    let state = given(&registered());
    assert_eq!(Terminal::decide(&state, status(TerminalStatus::Unavailable, other())), Err(TerminalError::NotFound));
    assert_eq!(
        Terminal::decide(&state, health(HealthKind::Heartbeat, Severity::Info, other())),
        Err(TerminalError::NotFound)
    );
    assert_eq!(
        Terminal::decide(&TerminalState::default(), status(TerminalStatus::Available, acme())),
        Err(TerminalError::NotFound)
    );
}

#[test]
fn operators_set_only_service_statuses_and_repeats_change_nothing() {
    let mut history = registered();
    assert!(matches!(
        Terminal::decide(&given(&history), status(TerminalStatus::Charging, acme())),
        Err(TerminalError::Invalid(_))
    ));
    let events = Terminal::decide(&given(&history), status(TerminalStatus::Available, acme())).unwrap_or_default();
    assert_eq!(events.len(), 1);
    history.extend(events);
    assert_eq!(Terminal::decide(&given(&history), status(TerminalStatus::Available, acme())), Ok(vec![]));
}

#[test]
fn events_round_trip_through_their_stored_form() {
    for event in registered() {
        let (event_type, version, payload) = event.to_record();
        let back = TerminalEvent::from_record(event_type, version, payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
    }
    assert!(TerminalEvent::from_record("terminal.exploded", 1, serde_json::json!({})).is_err());
    assert!(TerminalEvent::from_record("terminal.registered", 99, serde_json::json!({})).is_err());
}

fn credentials(hash: Option<&str>, profile: Option<u8>, company: CompanyId) -> TerminalCommand {
    TerminalCommand::SetCredentials(SetChargerCredentials {
        company_id: company,
        password_hash: hash.map(str::to_owned),
        security_profile: profile,
        now: now(),
    })
}

fn field_errors(result: Result<Vec<TerminalEvent>, TerminalError>) -> Vec<String> {
    match result {
        Err(TerminalError::Invalid(fields)) => fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_registration_without_a_password_needs_an_explicit_profile_0() {
    let mut cmd = register_cmd();
    cmd.password_hash = None;
    let errors = field_errors(Terminal::decide(&TerminalState::default(), TerminalCommand::Register(cmd.clone())));
    assert!(errors.len() == 1 && errors[0].starts_with("chargerPassword: is required"), "{errors:?}");
    cmd.security_profile = Some(1);
    let errors = field_errors(Terminal::decide(&TerminalState::default(), TerminalCommand::Register(cmd.clone())));
    assert!(errors[0].starts_with("chargerPassword: is required for security profile 1"), "{errors:?}");
    cmd.security_profile = Some(0);
    let events = Terminal::decide(&TerminalState::default(), TerminalCommand::Register(cmd)).unwrap_or_default();
    assert_eq!(events.len(), 1, "{events:?}");
    let TerminalState::Registered(t) = given(&events) else { panic!("not registered") };
    assert_eq!((t.security_profile, t.password_hash.as_deref()), (0, None));
}

#[test]
fn profile_0_with_a_password_and_unknown_profiles_are_refused() {
    let mut cmd = register_cmd();
    cmd.security_profile = Some(0);
    let errors = field_errors(Terminal::decide(&TerminalState::default(), TerminalCommand::Register(cmd.clone())));
    assert!(errors[0].starts_with("chargerPassword: must be absent"), "{errors:?}");
    cmd.security_profile = Some(3);
    let errors = field_errors(Terminal::decide(&TerminalState::default(), TerminalCommand::Register(cmd)));
    assert_eq!(errors, vec!["securityProfile: must be 0, 1 or 2"]);
}

#[test]
fn a_password_means_profile_1_in_one_event_and_profile_2_is_recorded_explicitly() {
    let TerminalState::Registered(t) = given(&registered()) else { panic!("not registered") };
    assert_eq!((registered().len(), t.security_profile, t.password_hash.as_deref()), (1, 1, Some("$argon2id$hash")));
    let mut cmd = register_cmd();
    cmd.security_profile = Some(2);
    let events = Terminal::decide(&TerminalState::default(), TerminalCommand::Register(cmd)).unwrap_or_default();
    assert_eq!(
        events.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        vec!["terminal.registered", "terminal.charger_credentials_set"]
    );
    let TerminalState::Registered(t) = given(&events) else { panic!("not registered") };
    assert_eq!(t.security_profile, 2);
}

#[test]
fn rotating_replaces_the_hash_and_keeps_the_profile() {
    let mut history = registered();
    let events = Terminal::decide(&given(&history), credentials(Some("$argon2id$new"), None, acme()))
        .unwrap_or_else(|e| panic!("{e}"));
    history.extend(events);
    let TerminalState::Registered(t) = given(&history) else { panic!("not registered") };
    assert_eq!((t.security_profile, t.password_hash.as_deref()), (1, Some("$argon2id$new")));
    // Dropping to profile 0 only when asked for explicitly.
    let errors = field_errors(Terminal::decide(&given(&history), credentials(None, None, acme())));
    assert!(errors[0].starts_with("password: is required"), "{errors:?}");
    history.extend(Terminal::decide(&given(&history), credentials(None, Some(0), acme())).unwrap_or_default());
    let TerminalState::Registered(t) = given(&history) else { panic!("not registered") };
    assert_eq!((t.security_profile, t.password_hash.as_deref()), (0, None));
    // A password for a profile 0 terminal makes it profile 1.
    history
        .extend(Terminal::decide(&given(&history), credentials(Some("$argon2id$3"), None, acme())).unwrap_or_default());
    let TerminalState::Registered(t) = given(&history) else { panic!("not registered") };
    assert_eq!(t.security_profile, 1);
}

#[test]
fn another_company_cannot_rotate_and_auto_registration_never_takes_a_registered_id() {
    let state = given(&registered());
    assert_eq!(Terminal::decide(&state, credentials(Some("$argon2id$x"), None, other())), Err(TerminalError::NotFound));
    let auto = TerminalCommand::AutoRegister(AutoRegisterTerminal {
        company_id: other(),
        terminal_id: TerminalId::parse("EVSE-001").unwrap_or_else(|e| panic!("{e}")),
        ocpp_version: OcppVersion::V16,
        now: now(),
    });
    assert!(matches!(Terminal::decide(&state, auto), Err(TerminalError::AlreadyRegistered(_))));
}
