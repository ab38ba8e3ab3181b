//! The `CpmsMapping` aggregate: one station mapped to a CPMS adapter.
//!
//! Stream: `cpms_mapping-<uuid>`. Creation fixes the owning company and the
//! station; every later command must come from that company or it is answered
//! as "not found", and so is any command on a deleted mapping.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    AdapterType, ChargePointTest, CpmsMappingEvent, MappingCreated, MappingDeleted, MappingTested, MappingUpdated,
    TestOutcome,
};
use crate::{
    error::{describe, RefusalKind, Validator},
    Aggregate, CompanyId, FieldError, TerminalId,
};

/// Most charge points one mapping may list.
pub const MAX_CHARGE_POINTS: usize = 64;
/// Longest error text a test result may carry.
pub const MAX_ERROR_TEXT: usize = 500;

/// A mapping's refusals, one variant each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The command's fields are invalid (station, charge points, test results).
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// Valid fields that the current state refuses: a charge point that is not
    /// a terminal of the company, a station that is not the mapping's.
    #[error("{}", crate::error::describe_conflict(.0))]
    Conflicting(Vec<FieldError>),
    /// No such mapping, deleted, or another company's.
    #[error("mapping not found")]
    NotFound,
    /// `Create` with the id of a mapping that exists (or existed).
    #[error("mapping {0} already exists")]
    AlreadyExists(Uuid),
    /// A test report about charge points or an adapter the mapping no longer
    /// has: it was updated while the adapter was testing.
    #[error("the mapping changed while it was being tested; test it again")]
    ChangedWhileTested,
}

impl MappingError {
    /// How a transport should answer this refusal.
    pub fn kind(&self) -> RefusalKind<'_> {
        match self {
            Self::Invalid(fields) => RefusalKind::Validation(fields),
            Self::Conflicting(fields) => RefusalKind::ConflictOn(fields),
            Self::NotFound => RefusalKind::NotFound,
            Self::AlreadyExists(_) | Self::ChangedWhileTested => RefusalKind::Conflict,
        }
    }
}

/// What the write side knows of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Id of the mapping, also the key of its stream `cpms_mapping-<uuid>`.
    pub mapping_id: Uuid,
    /// Company fixed at creation; other companies' commands are answered as not found.
    pub company_id: CompanyId,
    /// Positive station id fixed at creation; an update cannot change it.
    pub station_id: i64,
    /// How the station's charge points are reached (`ocpp`: our own gateway).
    pub adapter_type: AdapterType,
    /// CPMS-side charge point ids.
    pub charge_point_ids: Vec<String>,
    /// Platform clock when the mapping was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The last connectivity test.
    pub last_test: Option<MappingTested>,
}

/// Folded state of a mapping stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum MappingState {
    /// No events yet.
    #[default]
    Absent,
    /// Created and not deleted: the only state that accepts commands.
    Live(Box<Mapping>),
    /// Deleted; kept for its history only.
    Deleted(Box<Mapping>),
}

impl MappingState {
    /// The live mapping, if the company owns it.
    pub fn live_for(&self, company: CompanyId) -> Option<&Mapping> {
        match self {
            Self::Live(m) if m.company_id == company => Some(m),
            _ => None,
        }
    }
}

/// Map a station to an adapter.
#[derive(Debug, Clone)]
pub struct CreateMapping {
    /// New id.
    pub mapping_id: Uuid,
    /// Company that will own the mapping (the caller's).
    pub company_id: CompanyId,
    /// Station to map; must be a positive integer.
    pub station_id: i64,
    /// Adapter that reaches the charge points; decides the charge point id syntax.
    pub adapter_type: AdapterType,
    /// CPMS-side charge point ids.
    pub charge_point_ids: Vec<String>,
    /// Those of `charge_point_ids` the adapter does not reach for this company
    /// (`ocpp`: not a terminal of the company), as the command side looked them up.
    pub foreign_charge_points: Vec<String>,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Change a mapping's adapter or charge points. The station cannot change.
#[derive(Debug, Clone)]
pub struct UpdateMapping {
    /// Caller's company.
    pub company_id: CompanyId,
    /// Must be the mapping's station when given.
    pub station_id: Option<i64>,
    /// New adapter.
    pub adapter_type: Option<AdapterType>,
    /// New charge point ids (the whole list).
    pub charge_point_ids: Option<Vec<String>>,
    /// See [`CreateMapping::foreign_charge_points`].
    pub foreign_charge_points: Vec<String>,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Delete a mapping (a `deleted` event; the history stays).
#[derive(Debug, Clone)]
pub struct DeleteMapping {
    /// Caller's company.
    pub company_id: CompanyId,
    /// The clock.
    pub now: DateTime<Utc>,
}

/// Record the outcome of a connectivity test the adapter ran.
#[derive(Debug, Clone)]
pub struct RecordTest {
    /// Caller's company.
    pub company_id: CompanyId,
    /// The adapter that ran it.
    pub adapter_type: AdapterType,
    /// Timeout used, ms.
    pub timeout_ms: i64,
    /// Retries allowed.
    pub retries: i64,
    /// Per charge point.
    pub results: Vec<ChargePointTest>,
    /// When the test began.
    pub started_at: DateTime<Utc>,
    /// The clock (when it ended).
    pub now: DateTime<Utc>,
}

/// Commands of the mapping aggregate.
#[derive(Debug, Clone)]
pub enum MappingCommand {
    /// See [`CreateMapping`].
    Create(CreateMapping),
    /// See [`UpdateMapping`].
    Update(UpdateMapping),
    /// See [`DeleteMapping`].
    Delete(DeleteMapping),
    /// See [`RecordTest`].
    RecordTest(RecordTest),
}

/// The mapping aggregate.
#[derive(Debug)]
pub struct CpmsMapping;

impl CpmsMapping {
    /// Stream id of a mapping.
    pub fn stream_id(id: Uuid) -> String {
        format!("{}-{id}", Self::CATEGORY)
    }
}

impl Aggregate for CpmsMapping {
    const CATEGORY: &'static str = "cpms_mapping";
    type Error = MappingError;
    type State = MappingState;
    type Command = MappingCommand;
    type Event = CpmsMappingEvent;

    fn decide(state: &MappingState, command: MappingCommand) -> Result<Vec<CpmsMappingEvent>, MappingError> {
        match command {
            MappingCommand::Create(cmd) => create(state, cmd),
            MappingCommand::Update(cmd) => update(owned(state, cmd.company_id)?, cmd),
            MappingCommand::Delete(cmd) => {
                owned(state, cmd.company_id)?;
                Ok(vec![CpmsMappingEvent::Deleted(MappingDeleted { deleted_at: cmd.now })])
            }
            MappingCommand::RecordTest(cmd) => record_test(owned(state, cmd.company_id)?, cmd),
        }
    }

    fn evolve(state: MappingState, event: &CpmsMappingEvent) -> MappingState {
        match (state, event) {
            (MappingState::Absent, CpmsMappingEvent::Created(c)) => MappingState::Live(Box::new(Mapping {
                mapping_id: c.mapping_id,
                company_id: c.company_id,
                station_id: c.station_id,
                adapter_type: c.adapter_type,
                charge_point_ids: c.charge_point_ids.clone(),
                created_at: c.created_at,
                updated_at: c.created_at,
                last_test: None,
            })),
            (MappingState::Live(mut m), CpmsMappingEvent::Updated(u)) => {
                m.adapter_type = u.adapter_type;
                m.charge_point_ids = u.charge_point_ids.clone();
                m.updated_at = u.updated_at;
                MappingState::Live(m)
            }
            (MappingState::Live(mut m), CpmsMappingEvent::Tested(t)) => {
                m.last_test = Some(t.clone());
                MappingState::Live(m)
            }
            (MappingState::Live(mut m), CpmsMappingEvent::Deleted(d)) => {
                m.updated_at = d.deleted_at;
                MappingState::Deleted(m)
            }
            // Events out of order cannot come from decide; a fold ignores them.
            (state, _) => state,
        }
    }
}

/// The live mapping, if the caller's company owns it; otherwise "not found".
fn owned(state: &MappingState, company: CompanyId) -> Result<&Mapping, MappingError> {
    state.live_for(company).ok_or(MappingError::NotFound)
}

/// Checks a charge point list for an adapter: count, syntax and duplicates
/// in `v`; reach (the company's terminals) in `conflicts`.
fn check_charge_points(
    v: &mut Validator,
    conflicts: &mut Validator,
    adapter: AdapterType,
    ids: &[String],
    foreign: &[String],
) {
    v.check(
        (1..=MAX_CHARGE_POINTS).contains(&ids.len()),
        "chargePointIds",
        format!("must list 1 to {MAX_CHARGE_POINTS} charge points"),
    );
    for (i, id) in ids.iter().enumerate() {
        let field = format!("chargePointIds[{i}]");
        let syntax_ok = match adapter {
            AdapterType::Ocpp => TerminalId::parse(id).is_ok(),
        };
        if !syntax_ok {
            v.check(
                false,
                field,
                "is not a charge point id (1 to 48 characters from A-Z, a-z, 0-9, '.', '_', '-', ':')",
            );
        } else if ids[..i].contains(id) {
            v.check(false, field, "is listed twice");
        } else if foreign.contains(id) {
            let message = match adapter {
                AdapterType::Ocpp => "is not a terminal of your company",
            };
            conflicts.check(false, field, message);
        }
    }
}

fn create(state: &MappingState, cmd: CreateMapping) -> Result<Vec<CpmsMappingEvent>, MappingError> {
    let mut v = Validator::default();
    v.check(cmd.station_id > 0, "stationId", "must be a positive integer");
    let mut conflicts = Validator::default();
    check_charge_points(&mut v, &mut conflicts, cmd.adapter_type, &cmd.charge_point_ids, &cmd.foreign_charge_points);
    v.finish(MappingError::Invalid)?;
    conflicts.finish(MappingError::Conflicting)?;
    if !matches!(state, MappingState::Absent) {
        return Err(MappingError::AlreadyExists(cmd.mapping_id));
    }
    Ok(vec![CpmsMappingEvent::Created(MappingCreated {
        mapping_id: cmd.mapping_id,
        company_id: cmd.company_id,
        station_id: cmd.station_id,
        adapter_type: cmd.adapter_type,
        charge_point_ids: cmd.charge_point_ids,
        created_at: cmd.now,
    })])
}

fn update(mapping: &Mapping, cmd: UpdateMapping) -> Result<Vec<CpmsMappingEvent>, MappingError> {
    let adapter_type = cmd.adapter_type.unwrap_or(mapping.adapter_type);
    let charge_point_ids = cmd.charge_point_ids.unwrap_or_else(|| mapping.charge_point_ids.clone());
    let mut v = Validator::default();
    let mut conflicts = Validator::default();
    conflicts.check(
        cmd.station_id.is_none_or(|s| s == mapping.station_id),
        "stationId",
        "a mapping's station cannot change: delete it and map the other station",
    );
    check_charge_points(&mut v, &mut conflicts, adapter_type, &charge_point_ids, &cmd.foreign_charge_points);
    v.finish(MappingError::Invalid)?;
    conflicts.finish(MappingError::Conflicting)?;
    if adapter_type == mapping.adapter_type && charge_point_ids == mapping.charge_point_ids {
        return Ok(vec![]);
    }
    Ok(vec![CpmsMappingEvent::Updated(MappingUpdated { adapter_type, charge_point_ids, updated_at: cmd.now })])
}

fn record_test(mapping: &Mapping, cmd: RecordTest) -> Result<Vec<CpmsMappingEvent>, MappingError> {
    let tested: Vec<&str> = cmd.results.iter().map(|r| r.charge_point_id.as_str()).collect();
    let mapped: Vec<&str> = mapping.charge_point_ids.iter().map(String::as_str).collect();
    if cmd.adapter_type != mapping.adapter_type || tested != mapped {
        // A PATCH landed while the adapter was testing: this report is about the old mapping.
        return Err(MappingError::ChangedWhileTested);
    }
    let mut v = Validator::default();
    v.check(cmd.started_at <= cmd.now, "startedAt", "is after the end of the test");
    for (i, r) in cmd.results.iter().enumerate() {
        v.check(r.latency_ms.is_none_or(|l| l >= 0), format!("results[{i}].latencyMs"), "must not be negative");
        v.check(r.attempts >= 0, format!("results[{i}].attempts"), "must not be negative");
        v.check(
            r.error.as_deref().is_none_or(|e| e.chars().count() <= MAX_ERROR_TEXT),
            format!("results[{i}].error"),
            format!("must be at most {MAX_ERROR_TEXT} characters"),
        );
        v.check(
            (r.result == TestOutcome::Ok) == r.error.is_none(),
            format!("results[{i}].error"),
            "is given exactly when the result is not ok",
        );
    }
    v.finish(MappingError::Invalid)?;
    let distinct: BTreeSet<&str> = tested.iter().copied().collect();
    let ok = !cmd.results.is_empty()
        && distinct.len() == cmd.results.len()
        && cmd.results.iter().all(|r| r.result == TestOutcome::Ok);
    Ok(vec![CpmsMappingEvent::Tested(MappingTested {
        adapter_type: cmd.adapter_type,
        ok,
        timeout_ms: cmd.timeout_ms,
        retries: cmd.retries,
        results: cmd.results,
        started_at: cmd.started_at,
        tested_at: cmd.now,
    })])
}
