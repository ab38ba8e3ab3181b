//! Checking a start before any money moves: the request's fields against the
//! session's rules ([`domain::session::start_errors`]) and, for an OCPP
//! session, the charger — the company's, connected, with the connector on it
//! and `Available` — through the [`ChargerDirectory`] port. One answer names
//! every bad field; a charger that is offline is refused only when nothing
//! else is wrong.

use domain::{
    payment::PaymentMethod,
    session::{start_errors, SessionError, SessionKind, StartFields, Tariff},
    terminal::OcppVersion,
    CompanyId, FieldError, TerminalId,
};

use super::{directory::ChargerSnapshot, ChargerDirectory, StartInput};
use crate::CommandError;

/// A start that passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Checked {
    /// Payment method.
    pub method: PaymentMethod,
    /// The tariff in reais (per kWh and per session), fixed for the session.
    pub tariff: Tariff,
    /// The charger; an ad-hoc session without one is named after its station.
    pub charge_point_id: String,
    /// Protocol of the charger, when the read model knows it (OCPP sessions).
    pub protocol: Option<OcppVersion>,
}

/// Names `error` unless its field already has one (the first found stands).
fn name(errors: &mut Vec<FieldError>, error: FieldError) {
    if !errors.iter().any(|e| e.field == error.field) {
        errors.push(error);
    }
}

/// A field as the transport read it; what it could not read is named.
fn read<T: Clone>(errors: &mut Vec<FieldError>, field: &Result<T, FieldError>) -> Option<T> {
    field.clone().map_err(|e| errors.push(e)).ok()
}

/// Checks a start: `Err` with every bad field (or the charger offline), else
/// what to start.
pub(super) async fn check_start(
    directory: &dyn ChargerDirectory,
    company: CompanyId,
    input: &StartInput,
) -> Result<Checked, CommandError> {
    let mut errors = Vec::new();
    let method = read(&mut errors, &input.method);
    let price_per_kwh = read(&mut errors, &input.price_per_kwh);
    let fixed_connection_cost = read(&mut errors, &input.fixed_connection_cost);
    for error in start_errors(StartFields {
        station_id: input.station_id,
        connector_id: input.connector_id,
        amount: input.amount,
        email: &input.email,
        cpf: input.cpf.as_deref(),
        price_per_kwh,
        fixed_connection_cost,
    }) {
        name(&mut errors, error);
    }
    let charge_point = input.charge_point_id.clone().unwrap_or_default();
    let mut protocol = None;
    let stateless = errors.len();
    if input.kind == SessionKind::Ocpp {
        let snapshot = match TerminalId::parse(&charge_point) {
            Ok(id) => directory.charger(company, &id, input.connector_id).await?,
            Err(_) => None,
        };
        protocol = charger_fits(&charge_point, input.connector_id, snapshot, input.connected_here, &mut errors)?;
    }
    match (method, price_per_kwh, fixed_connection_cost) {
        (Some(method), Some(price_per_kwh), Some(fixed_connection_cost)) if errors.is_empty() => Ok(Checked {
            method,
            tariff: Tariff { price_per_kwh, fixed_connection_cost },
            charge_point_id: if charge_point.is_empty() {
                format!("adhoc-station-{}", input.station_id)
            } else {
                charge_point
            },
            protocol,
        }),
        // Only the charger's state is to blame: the request is valid, the charger refuses it.
        _ if stateless == 0 && !errors.is_empty() => Err(domain::DomainError::Conflicting(errors).into()),
        _ => Err(SessionError::Invalid(errors).into()),
    }
}

/// Whether an OCPP session may start on `connector` of the charger the read
/// models describe (`None`: not a terminal of the company): names the fields
/// that do not fit; refuses an offline charger when no field is wrong; answers
/// the charger's protocol when known.
fn charger_fits(
    charge_point: &str,
    connector: i64,
    snapshot: Option<ChargerSnapshot>,
    connected_here: bool,
    errors: &mut Vec<FieldError>,
) -> Result<Option<OcppVersion>, SessionError> {
    let Some(charger) = snapshot else {
        name(errors, FieldError::new("chargePointId", "is not a terminal of yours"));
        return Ok(None);
    };
    if !(connected_here || charger.connected) && errors.is_empty() {
        return Err(SessionError::ChargerOffline { charge_point_id: charge_point.to_owned() });
    }
    match charger.connector_status.as_deref() {
        Some("Available") => {}
        Some(other) => name(errors, FieldError::new("connectorId", format!("is {other}, not Available"))),
        None if charger.registered_connectors.contains(&connector) => {
            name(errors, FieldError::new("connectorId", "has not reported its status yet"))
        }
        None => name(errors, FieldError::new("connectorId", "does not exist on this charger")),
    }
    Ok(charger.protocol)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use async_trait::async_trait;
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use super::*;
    use crate::read_model::ReadModelError;

    /// A directory answering one snapshot and remembering the questions.
    struct Directory {
        answer: Option<ChargerSnapshot>,
        asked: Mutex<Vec<(String, i64)>>,
    }

    #[async_trait]
    impl ChargerDirectory for Directory {
        async fn charger(
            &self,
            _company: CompanyId,
            charge_point: &TerminalId,
            connector: i64,
        ) -> Result<Option<ChargerSnapshot>, ReadModelError> {
            self.asked.lock().unwrap().push((charge_point.as_str().to_owned(), connector));
            Ok(self.answer.clone())
        }
    }

    fn directory(answer: Option<ChargerSnapshot>) -> Directory {
        Directory { answer, asked: Mutex::new(Vec::new()) }
    }

    fn charger(status: Option<&str>, connected: bool) -> ChargerSnapshot {
        ChargerSnapshot {
            registered_connectors: vec![1, 2],
            connector_status: status.map(str::to_owned),
            connected,
            protocol: Some(OcppVersion::V201),
        }
    }

    fn input(kind: SessionKind) -> StartInput {
        StartInput {
            kind,
            station_id: 10,
            charge_point_id: Some("EVSE-001".into()),
            connector_id: 1,
            connected_here: false,
            method: Ok(PaymentMethod::CreditCard),
            amount: 5000,
            email: "driver@company.com".into(),
            cpf: Some("52998224725".into()),
            card_token: Some("tok_ok".into()),
            network_token: None,
            customer_id: None,
            price_per_kwh: Ok(Decimal::new(15, 1)),
            fixed_connection_cost: Ok(Decimal::new(2, 0)),
        }
    }

    async fn check(directory: &Directory, input: &StartInput) -> Result<Checked, CommandError> {
        check_start(directory, CompanyId(Uuid::from_u128(7)), input).await
    }

    /// `field: message` of every named field, or the refusal's text.
    fn refusal(result: Result<Checked, CommandError>) -> Vec<String> {
        match result {
            Err(CommandError::Domain(domain::DomainError::Session(SessionError::Invalid(fields)))) => {
                fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect()
            }
            // Only the charger to blame: a conflict, said the same way (prefixed).
            Err(CommandError::Domain(domain::DomainError::Conflicting(fields))) => {
                fields.iter().map(|f| format!("conflict {}: {}", f.field, f.message)).collect()
            }
            Err(other) => vec![other.to_string()],
            Ok(checked) => panic!("accepted: {checked:?}"),
        }
    }

    #[tokio::test]
    async fn an_available_connector_of_a_connected_charger_starts_with_its_protocol() {
        // Given a connected charger whose connector 1 is Available,
        let d = directory(Some(charger(Some("Available"), true)));
        // when a session is started on it, then it may start, with the charger's protocol.
        let checked = check(&d, &input(SessionKind::Ocpp)).await.unwrap();
        assert_eq!(checked.protocol, Some(OcppVersion::V201));
        assert_eq!(checked.charge_point_id, "EVSE-001");
        assert_eq!(
            checked.tariff,
            Tariff { price_per_kwh: Decimal::new(15, 1), fixed_connection_cost: Decimal::new(2, 0) }
        );
        assert_eq!(*d.asked.lock().unwrap(), [("EVSE-001".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn an_offline_charger_is_refused_only_when_nothing_else_is_wrong() {
        // Given a charger the read model has as disconnected,
        let d = directory(Some(charger(Some("Available"), false)));
        // when a valid start is asked, then it is refused as offline;
        assert_eq!(
            refusal(check(&d, &input(SessionKind::Ocpp)).await),
            ["EVSE-001 is offline: nothing was authorized"]
        );
        // when this process's gateway holds its connection, then it may start;
        let here = StartInput { connected_here: true, ..input(SessionKind::Ocpp) };
        assert!(check(&d, &here).await.is_ok());
        // when the request is also bad, then the bad fields are the answer.
        let bad = StartInput { email: "x".into(), ..input(SessionKind::Ocpp) };
        assert_eq!(refusal(check(&d, &bad).await), ["email: is not a valid e-mail address"]);
    }

    #[tokio::test]
    async fn a_connector_must_exist_have_reported_and_be_available() {
        for (status, connector, expected) in [
            (Some("Charging"), 1, "conflict connectorId: is Charging, not Available"),
            (None, 2, "conflict connectorId: has not reported its status yet"),
            (None, 9, "conflict connectorId: does not exist on this charger"),
        ] {
            // Given a connected charger registered with connectors 1 and 2,
            let d = directory(Some(charger(status, true)));
            // when a session is started on `connector`, then the connector is named.
            let asked = StartInput { connector_id: connector, ..input(SessionKind::Ocpp) };
            assert_eq!(refusal(check(&d, &asked).await), [expected]);
        }
    }

    #[tokio::test]
    async fn every_bad_field_is_named_once_in_one_answer() {
        // Given no terminal of that id for the company,
        let d = directory(None);
        // when a start is bad in every way, then every field is named once, the transport's first.
        let bad = StartInput {
            method: Err(FieldError::new("method", "must be PIX, …")),
            price_per_kwh: Err(FieldError::new("charger.price", "must be a decimal amount of reais")),
            fixed_connection_cost: Ok(Decimal::new(-1, 0)),
            amount: 0,
            email: "driver@company".into(),
            cpf: Some("12345678900".into()),
            connector_id: -1,
            ..input(SessionKind::Ocpp)
        };
        assert_eq!(
            refusal(check(&d, &bad).await),
            [
                "method: must be PIX, …",
                "charger.price: must be a decimal amount of reais",
                "amount: must be above zero (cents)",
                "email: is not a valid e-mail address",
                "cpf: is not a valid CPF (check digits)",
                "connectorId: must be 0 or more",
                "charger.fixed_connection_cost: must not be below zero",
                "chargePointId: is not a terminal of yours",
            ]
        );
        // A charge point id that cannot be a terminal's is not looked up.
        let unknown = StartInput { charge_point_id: Some("no such/id".into()), ..input(SessionKind::Ocpp) };
        assert_eq!(refusal(check(&d, &unknown).await), ["conflict chargePointId: is not a terminal of yours"]);
        assert_eq!(d.asked.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_adhoc_start_asks_nothing_of_chargers_and_is_named_after_its_station() {
        // Given no charger at all,
        let d = directory(None);
        // when an ad-hoc session is started without a charger, then it starts as the station's.
        let adhoc = StartInput { charge_point_id: None, ..input(SessionKind::Adhoc) };
        let checked = check(&d, &adhoc).await.unwrap();
        assert_eq!((checked.charge_point_id.as_str(), checked.protocol), ("adhoc-station-10", None));
        assert!(d.asked.lock().unwrap().is_empty());
    }
}
