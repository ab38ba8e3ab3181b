//! The rules of the terminal aggregate.

use chrono::Duration;

use super::TerminalError;
use super::{
    ChangeStatus, ChargerCredentialsSet, HealthKind, RegisterTerminal, RegisteredTerminal, ReportHealth,
    SetChargerCredentials, Severity, StatusSource, TerminalCommand, TerminalEvent, TerminalHealthReported,
    TerminalRegistered, TerminalState, TerminalStatus, TerminalStatusChanged,
};
use crate::{error::Validator, CompanyId};

/// How far in the future a reported timestamp may be (clock skew allowance).
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
const MAX_CONNECTORS: usize = 32;
const MAX_POWER_W: u32 = 3_750_000;

pub(super) fn decide(state: &TerminalState, command: TerminalCommand) -> Result<Vec<TerminalEvent>, TerminalError> {
    match command {
        TerminalCommand::Register(cmd) => register(state, cmd),
        TerminalCommand::AutoRegister(cmd) => match state {
            // Registered meanwhile (by an operator or a concurrent connection):
            // refused, so the handshake fails closed instead of admitting the
            // charger into a company that may not be its own.
            TerminalState::Registered(_) => Err(TerminalError::AlreadyRegistered(cmd.terminal_id)),
            TerminalState::Unregistered => Ok(vec![TerminalEvent::Registered(TerminalRegistered {
                terminal_id: cmd.terminal_id,
                company_id: cmd.company_id,
                station_id: 0,
                vendor: "unknown".into(),
                model: "unknown".into(),
                ocpp_version: cmd.ocpp_version,
                connectors: vec![],
                password_hash: None,
                registered_at: cmd.now,
            })]),
        },
        TerminalCommand::ReportHealth(cmd) => report_health(owned(state, cmd.company_id)?, cmd),
        TerminalCommand::ChangeStatus(cmd) => change_status(owned(state, cmd.company_id)?, cmd),
        TerminalCommand::SetCredentials(cmd) => set_credentials(owned(state, cmd.company_id)?, cmd),
    }
}

/// The security profile a password (or its absence) and an explicit choice
/// give; `current` is what an absent choice keeps (1 or 2). Refuses profile 0
/// with a password and profiles 1 and 2 without one.
fn profile(v: &mut Validator, field: &str, has_password: bool, asked: Option<u8>, current: u8) -> u8 {
    match asked {
        Some(p) if p > 2 => {
            v.check(false, "securityProfile", "must be 0, 1 or 2");
            p
        }
        Some(0) => {
            v.check(!has_password, field, "must be absent for security profile 0 (no credentials)");
            0
        }
        Some(p) => {
            v.check(has_password, field, format!("is required for security profile {p}"));
            p
        }
        None => {
            v.check(
                has_password,
                field,
                "is required (16 to 40 characters), unless the charger is explicitly registered as \
                 \"securityProfile\": 0 (no credentials)",
            );
            current.max(1)
        }
    }
}

fn set_credentials(
    terminal: &RegisteredTerminal,
    cmd: SetChargerCredentials,
) -> Result<Vec<TerminalEvent>, TerminalError> {
    let mut v = Validator::default();
    let security_profile =
        profile(&mut v, "password", cmd.password_hash.is_some(), cmd.security_profile, terminal.security_profile);
    v.finish(TerminalError::Invalid)?;
    Ok(vec![TerminalEvent::CredentialsSet(ChargerCredentialsSet {
        security_profile,
        password_hash: cmd.password_hash,
        set_at: cmd.now,
    })])
}

/// The registered terminal, if the caller's company owns it; otherwise "not found".
fn owned(state: &TerminalState, company: CompanyId) -> Result<&RegisteredTerminal, TerminalError> {
    match state {
        TerminalState::Registered(t) if t.company_id() == company => Ok(t),
        _ => Err(TerminalError::NotFound),
    }
}

/// Non-blank, at most `max` characters, no control characters (NUL cannot be stored).
fn text_ok(value: &str, max: usize) -> bool {
    !value.trim().is_empty()
        && value.chars().count() <= max
        && !value.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Earliest timestamp a report may carry (chargers with a reset clock report 1970).
fn earliest() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(946_684_800, 0).unwrap_or_default() // 2000-01-01
}

fn register(state: &TerminalState, cmd: RegisterTerminal) -> Result<Vec<TerminalEvent>, TerminalError> {
    let mut v = Validator::default();
    v.check(cmd.station_id > 0, "stationId", "must be a positive integer");
    v.check(text_ok(&cmd.vendor, 50), "vendor", "must be 1 to 50 characters");
    v.check(text_ok(&cmd.model, 50), "model", "must be 1 to 50 characters");
    v.check(
        (1..=MAX_CONNECTORS).contains(&cmd.connectors.len()),
        "connectors",
        format!("must list 1 to {MAX_CONNECTORS} connectors"),
    );
    for (i, c) in cmd.connectors.iter().enumerate() {
        v.check(c.id >= 1, format!("connectors[{i}].id"), "must be 1 or more");
        v.check(
            cmd.connectors[..i].iter().all(|other| other.id != c.id),
            format!("connectors[{i}].id"),
            "is listed twice",
        );
        v.check(
            (1..=MAX_POWER_W).contains(&c.max_power_w),
            format!("connectors[{i}].maxPowerW"),
            format!("must be between 1 and {MAX_POWER_W} W"),
        );
    }
    let security_profile = profile(&mut v, "chargerPassword", cmd.password_hash.is_some(), cmd.security_profile, 1);
    v.finish(TerminalError::Invalid)?;
    if !matches!(state, TerminalState::Unregistered) {
        // Said the same way whoever owns it: ids are global, ownership is private.
        return Err(TerminalError::AlreadyRegistered(cmd.terminal_id));
    }
    let mut connectors = cmd.connectors;
    connectors.sort_by_key(|c| c.id);
    let mut events = vec![TerminalEvent::Registered(TerminalRegistered {
        terminal_id: cmd.terminal_id,
        company_id: cmd.company_id,
        station_id: cmd.station_id,
        vendor: cmd.vendor.trim().to_owned(),
        model: cmd.model.trim().to_owned(),
        ocpp_version: cmd.ocpp_version,
        connectors,
        password_hash: cmd.password_hash.clone(),
        registered_at: cmd.now,
    })];
    // `terminal.registered` implies profile 0 or 1 by its hash; profile 2 is said explicitly.
    if security_profile != super::implied_profile(cmd.password_hash.as_deref()) {
        events.push(TerminalEvent::CredentialsSet(ChargerCredentialsSet {
            security_profile,
            password_hash: cmd.password_hash,
            set_at: cmd.now,
        }));
    }
    Ok(events)
}

fn report_health(terminal: &RegisteredTerminal, cmd: ReportHealth) -> Result<Vec<TerminalEvent>, TerminalError> {
    let mut v = Validator::default();
    v.check(cmd.occurred_at <= cmd.now + MAX_CLOCK_SKEW, "timestamp", "is more than 5 minutes in the future");
    v.check(cmd.occurred_at >= earliest(), "timestamp", "is before the year 2000");
    v.check(cmd.code.as_deref().is_none_or(|c| text_ok(c, 50)), "code", "must be 1 to 50 characters");
    v.check(cmd.message.as_deref().is_none_or(|m| text_ok(m, 500)), "message", "must be 1 to 500 characters");
    v.check(
        cmd.kind != HealthKind::Heartbeat || cmd.severity == Severity::Info,
        "severity",
        "a heartbeat has severity info",
    );
    v.finish(TerminalError::Invalid)?;

    let mut events = vec![TerminalEvent::HealthReported(TerminalHealthReported {
        kind: cmd.kind,
        severity: cmd.severity,
        code: cmd.code.clone(),
        message: cmd.message.clone(),
        occurred_at: cmd.occurred_at,
        reported_at: cmd.now,
    })];
    // A fault that stops the terminal takes it out of service; its recovery brings it back.
    let new_status = match cmd.kind {
        HealthKind::Fault if cmd.severity >= Severity::Error && terminal.status != TerminalStatus::Faulted => {
            Some(TerminalStatus::Faulted)
        }
        HealthKind::Recovery if terminal.status == TerminalStatus::Faulted => Some(TerminalStatus::Available),
        _ => None,
    };
    if let Some(to) = new_status {
        events.push(TerminalEvent::StatusChanged(TerminalStatusChanged {
            from: terminal.status,
            to,
            reason: cmd.code.or(cmd.message),
            source: StatusSource::Health,
            changed_at: cmd.now,
        }));
    }
    Ok(events)
}

fn change_status(terminal: &RegisteredTerminal, cmd: ChangeStatus) -> Result<Vec<TerminalEvent>, TerminalError> {
    let mut v = Validator::default();
    v.check(
        cmd.status.operator_settable(),
        "status",
        format!(
            "{} is reported by the charger; an operator may set Available, Unavailable or Faulted",
            cmd.status.as_str()
        ),
    );
    v.check(cmd.reason.as_deref().is_none_or(|r| text_ok(r, 500)), "reason", "must be 1 to 500 characters");
    v.finish(TerminalError::Invalid)?;
    if terminal.status == cmd.status && terminal.status_reason == cmd.reason {
        return Ok(vec![]);
    }
    Ok(vec![TerminalEvent::StatusChanged(TerminalStatusChanged {
        from: terminal.status,
        to: cmd.status,
        reason: cmd.reason,
        source: StatusSource::Operator,
        changed_at: cmd.now,
    })])
}
