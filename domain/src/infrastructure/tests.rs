//! Given / when / then tests of the charging-infrastructure rules. No runtime, no IO.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::{config::*, mapping::*, registry::*, *};
use crate::{error::RefusalKind, Aggregate, CompanyId, DomainError};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().unwrap_or_default()
}

fn acme() -> CompanyId {
    CompanyId(Uuid::from_u128(1))
}

fn other() -> CompanyId {
    CompanyId(Uuid::from_u128(2))
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn create(station: i64, cps: &[&str], foreign: &[&str]) -> MappingCommand {
    MappingCommand::Create(CreateMapping {
        mapping_id: Uuid::from_u128(10),
        company_id: acme(),
        station_id: station,
        adapter_type: AdapterType::Ocpp,
        charge_point_ids: ids(cps),
        foreign_charge_points: ids(foreign),
        now: now(),
    })
}

fn update(company: CompanyId, station: Option<i64>, cps: Option<&[&str]>) -> MappingCommand {
    MappingCommand::Update(UpdateMapping {
        company_id: company,
        station_id: station,
        adapter_type: None,
        charge_point_ids: cps.map(ids),
        foreign_charge_points: vec![],
        now: now(),
    })
}

fn given(commands: Vec<MappingCommand>) -> MappingState {
    commands.into_iter().fold(MappingState::default(), |state, command| {
        let events = CpmsMapping::decide(&state, command).unwrap_or_else(|e| panic!("given: {e}"));
        events.iter().fold(state, CpmsMapping::evolve)
    })
}

/// The fields a refusal names, and whether it is a conflict (valid fields the
/// state refuses) rather than invalid fields; whichever aggregate refused.
fn named<E: Into<DomainError>>(result: Result<Vec<impl std::fmt::Debug>, E>) -> (bool, Vec<String>) {
    let refusal = match result {
        Err(refusal) => refusal.into(),
        Ok(events) => panic!("expected a refusal naming fields, got {events:?}"),
    };
    let names = |errors: &[crate::FieldError]| errors.iter().map(|e| e.field.clone()).collect();
    match refusal.kind() {
        RefusalKind::Validation(errors) => (false, names(errors)),
        RefusalKind::ConflictOn(errors) => (true, names(errors)),
        _ => panic!("expected a refusal naming fields, got {refusal:?}"),
    }
}

/// The fields a validation refusal names.
fn fields<E: Into<DomainError>>(result: Result<Vec<impl std::fmt::Debug>, E>) -> Vec<String> {
    let (conflict, fields) = named(result);
    assert!(!conflict, "expected invalid fields, got a conflict on {fields:?}");
    fields
}

/// The fields a conflict names.
fn conflicts<E: Into<DomainError>>(result: Result<Vec<impl std::fmt::Debug>, E>) -> Vec<String> {
    let (conflict, fields) = named(result);
    assert!(conflict, "expected a conflict, got invalid fields {fields:?}");
    fields
}

fn result(cp: &str, outcome: TestOutcome) -> ChargePointTest {
    ChargePointTest {
        charge_point_id: cp.into(),
        connected: outcome != TestOutcome::NotConnected,
        result: outcome,
        error: (outcome != TestOutcome::Ok).then(|| "it failed".to_owned()),
        latency_ms: (outcome == TestOutcome::Ok).then_some(12),
        attempts: i64::from(outcome != TestOutcome::NotConnected),
    }
}

fn record(company: CompanyId, results: Vec<ChargePointTest>) -> MappingCommand {
    MappingCommand::RecordTest(RecordTest {
        company_id: company,
        adapter_type: AdapterType::Ocpp,
        timeout_ms: 5000,
        retries: 1,
        results,
        started_at: now(),
        now: now(),
    })
}

#[test]
fn creating_a_mapping_validates_every_field_at_once() {
    let refused =
        CpmsMapping::decide(&MappingState::default(), create(0, &["CP-1", "CP-1", "bad id", "CP-9"], &["CP-9"]));
    assert_eq!(fields(refused), ["stationId", "chargePointIds[1]", "chargePointIds[2]"]);
    // Valid in itself, the list names a terminal of another company: a conflict naming it.
    let foreign = CpmsMapping::decide(&MappingState::default(), create(7, &["CP-1", "CP-9"], &["CP-9"]));
    assert_eq!(conflicts(foreign), ["chargePointIds[1]"]);
    assert_eq!(fields(CpmsMapping::decide(&MappingState::default(), create(7, &[], &[]))), ["chargePointIds"]);
}

#[test]
fn a_created_mapping_is_live_for_its_company_only() {
    let state = given(vec![create(7, &["CP-1", "CP-2"], &[])]);
    let live = state.live_for(acme()).unwrap_or_else(|| panic!("not live"));
    assert_eq!((live.station_id, live.charge_point_ids.clone()), (7, ids(&["CP-1", "CP-2"])));
    assert!(state.live_for(other()).is_none());
    assert_eq!(CpmsMapping::decide(&state, update(other(), None, Some(&["CP-1"]))), Err(MappingError::NotFound));
    assert!(matches!(CpmsMapping::decide(&state, create(8, &["CP-3"], &[])), Err(MappingError::AlreadyExists(_))));
}

#[test]
fn an_update_changes_charge_points_but_never_the_station() {
    let state = given(vec![create(7, &["CP-1"], &[])]);
    assert_eq!(conflicts(CpmsMapping::decide(&state, update(acme(), Some(8), None))), ["stationId"]);
    assert_eq!(CpmsMapping::decide(&state, update(acme(), Some(7), Some(&["CP-1"]))), Ok(vec![]), "nothing changes");
    let events = CpmsMapping::decide(&state, update(acme(), None, Some(&["CP-1", "CP-2"]))).unwrap_or_default();
    let after = events.iter().fold(state, CpmsMapping::evolve);
    assert_eq!(after.live_for(acme()).map(|m| m.charge_point_ids.len()), Some(2));
}

#[test]
fn a_deleted_mapping_is_not_found_and_keeps_its_history() {
    let delete = || MappingCommand::Delete(DeleteMapping { company_id: acme(), now: now() });
    let state = given(vec![create(7, &["CP-1"], &[]), delete()]);
    assert!(matches!(&state, MappingState::Deleted(m) if m.station_id == 7));
    for command in
        [delete(), update(acme(), None, Some(&["CP-2"])), record(acme(), vec![result("CP-1", TestOutcome::Ok)])]
    {
        assert_eq!(CpmsMapping::decide(&state, command), Err(MappingError::NotFound));
    }
}

#[test]
fn a_test_is_ok_only_when_every_charge_point_passed() {
    let state = given(vec![create(7, &["CP-1", "CP-2"], &[])]);
    let passed = vec![result("CP-1", TestOutcome::Ok), result("CP-2", TestOutcome::Ok)];
    let failed = vec![result("CP-1", TestOutcome::Ok), result("CP-2", TestOutcome::NotConnected)];
    for (results, ok) in [(passed, true), (failed, false)] {
        match CpmsMapping::decide(&state, record(acme(), results)).as_deref() {
            Ok([CpmsMappingEvent::Tested(t)]) => assert_eq!((t.ok, t.timeout_ms, t.retries), (ok, 5000, 1)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_test_of_another_set_of_charge_points_is_refused() {
    let state = given(vec![create(7, &["CP-1", "CP-2"], &[])]);
    let stale = record(acme(), vec![result("CP-1", TestOutcome::Ok)]);
    assert!(matches!(CpmsMapping::decide(&state, stale), Err(MappingError::ChangedWhileTested)));
    let mut no_reason = result("CP-2", TestOutcome::Timeout);
    no_reason.error = None;
    let refused = CpmsMapping::decide(&state, record(acme(), vec![result("CP-1", TestOutcome::Ok), no_reason]));
    assert_eq!(fields(refused), ["results[1].error"]);
    assert_eq!(CpmsMapping::decide(&state, record(other(), vec![])), Err(MappingError::NotFound));
}

fn claim(mapping: u128, station: i64, cps: &[&str]) -> RegistryCommand {
    RegistryCommand::Claim {
        mapping_id: Uuid::from_u128(mapping),
        station_id: station,
        charge_point_ids: ids(cps),
        now: now(),
    }
}

fn registry(commands: Vec<RegistryCommand>) -> RegistryState {
    commands.into_iter().fold(RegistryState::default(), |state, command| {
        let events = CpmsRegistry::decide(&state, command).unwrap_or_else(|e| panic!("given: {e}"));
        events.iter().fold(state, CpmsRegistry::evolve)
    })
}

#[test]
fn a_station_and_a_charge_point_have_one_live_mapping() {
    let state = registry(vec![claim(1, 7, &["CP-1", "CP-2"])]);
    let station = CpmsRegistry::decide(&state, claim(2, 7, &["CP-3"]));
    assert!(matches!(&station, Err(RegistryError::StationTaken { station_id: 7, .. })), "{station:?}");
    assert_eq!(
        station.map_err(|e| e.to_string()),
        Err(format!("station 7 already has a live mapping ({})", Uuid::from_u128(1)))
    );
    let cp = CpmsRegistry::decide(&state, claim(2, 8, &["CP-2"]));
    assert!(
        matches!(&cp, Err(RegistryError::ChargePointTaken { charge_point_id, station_id: 7, .. }) if charge_point_id == "CP-2"),
        "{cp:?}"
    );
    assert_eq!(CpmsRegistry::decide(&state, claim(1, 7, &["CP-1", "CP-2"])), Ok(vec![]), "the same claim again");
    // A mapping may let go of a charge point, and another may then take it.
    let state = registry(vec![claim(1, 7, &["CP-1", "CP-2"]), claim(1, 7, &["CP-1"]), claim(2, 8, &["CP-2"])]);
    assert_eq!(state.charge_point_holder("CP-2"), Some((Uuid::from_u128(2), 8)));
}

#[test]
fn a_released_station_can_be_mapped_again() {
    let release = RegistryCommand::Release { mapping_id: Uuid::from_u128(1), now: now() };
    let state = registry(vec![claim(1, 7, &["CP-1"]), release.clone()]);
    assert_eq!(state.station_holder(7), None);
    assert_eq!(CpmsRegistry::decide(&state, release), Ok(vec![]), "releasing twice does nothing");
    assert!(CpmsRegistry::decide(&state, claim(2, 7, &["CP-1"])).is_ok_and(|e| e.len() == 1));
}

fn configure(timeout: Option<i64>, retries: Option<i64>, set: &[&str], removed: &[&str]) -> ConfigureAdapter {
    ConfigureAdapter {
        adapter_type: AdapterType::Ocpp,
        timeout_ms: timeout,
        retries,
        credentials_set: ids(set),
        credentials_removed: ids(removed),
        rejected_values: vec![],
        now: now(),
    }
}

#[test]
fn adapter_settings_are_validated_and_merged() {
    let defaults = ConfigState::default().settings(AdapterType::Ocpp);
    assert_eq!((defaults.timeout_ms, defaults.retries, defaults.updated_at), (10_000, 0, None));
    let mut bad = configure(Some(99), Some(11), &["api token"], &[]);
    bad.rejected_values = ids(&["apiKey"]);
    assert_eq!(
        fields(CpmsConfig::decide(&ConfigState::default(), bad)),
        ["timeoutMs", "retries", "credentials", "credentials.apiKey"]
    );
    let too_long = CpmsConfig::decide(&ConfigState::default(), configure(Some(120_001), None, &[], &[]));
    assert!(matches!(&too_long, Err(ConfigError::Invalid(f)) if f[0].field == "timeoutMs"), "{too_long:?}");

    let events =
        CpmsConfig::decide(&ConfigState::default(), configure(Some(2000), Some(2), &["token", "user"], &["never-set"]))
            .unwrap_or_default();
    assert!(matches!(events.as_slice(), [CpmsConfigEvent::AdapterConfigured(c)] if c.credentials_removed.is_empty()));
    let state = events.iter().fold(ConfigState::default(), CpmsConfig::evolve);
    let events = CpmsConfig::decide(&state, configure(None, None, &[], &["user"])).unwrap_or_default();
    let state = events.iter().fold(state, CpmsConfig::evolve);
    let settings = state.settings(AdapterType::Ocpp);
    assert_eq!((settings.timeout_ms, settings.retries), (2000, 2), "absent fields keep their value");
    assert_eq!(settings.credentials.into_iter().collect::<Vec<_>>(), ["token"]);
    assert_eq!(CpmsConfig::decide(&state, configure(Some(2000), None, &[], &["user"])), Ok(vec![]));
}

#[test]
fn credential_values_and_names_have_limits() {
    assert!(credential_value_ok("s3cr3t"));
    assert!(!credential_value_ok(""));
    assert!(!credential_value_ok("line\nbreak"));
    assert!(!credential_value_ok(&"x".repeat(MAX_CREDENTIAL_BYTES + 1)));
    assert!(credential_name_ok("ocpi.token-A"));
    assert!(!credential_name_ok("1token"));
    assert!(!credential_name_ok(&"a".repeat(65)));
}

#[test]
fn adapter_types_are_open_strings_in_event_schemas() {
    assert_eq!(serde_json::to_value(AdapterType::Ocpp).ok(), Some(serde_json::json!("ocpp")));
    assert!(serde_json::from_value::<AdapterType>(serde_json::json!("ocpi")).is_err());
    // A new adapter type must not change the shape of stored events.
    let schema = schemars::schema_for!(AdapterType).to_value();
    assert_eq!(schema.get("type"), Some(&serde_json::json!("string")), "{schema}");
    assert!(schema.get("enum").is_none() && schema.get("oneOf").is_none(), "{schema}");
}
