//! The rules a session's start must meet, as one function: the aggregate
//! refuses a start that breaks any, and the session service reports them with
//! what it checks of the charger, so one answer names every bad field.

use rust_decimal::Decimal;

use super::SessionStarted;
use crate::{
    payment::{cpf_valid, email_valid},
    FieldError,
};

/// The fields of a start that [`start_errors`] checks: a [`SessionStarted`]'s,
/// or a request's before the session exists.
#[derive(Debug, Clone, Copy)]
pub struct StartFields<'a> {
    /// Station of the charger; must be a positive integer.
    pub station_id: i64,
    /// Connector to charge on; must be 0 or more.
    pub connector_id: i64,
    /// Pre-authorization, cents.
    pub amount: i64,
    /// Receipt address.
    pub email: &'a str,
    /// Payer's CPF.
    pub cpf: Option<&'a str>,
    /// Reais per kWh; `None` when the caller could not read it (and says so itself).
    pub price_per_kwh: Option<Decimal>,
    /// Reais per session; `None` when the caller could not read it.
    pub fixed_connection_cost: Option<Decimal>,
}

impl<'a> From<&'a SessionStarted> for StartFields<'a> {
    fn from(start: &'a SessionStarted) -> Self {
        Self {
            station_id: start.station_id,
            connector_id: start.connector_id,
            amount: start.preauth_amount,
            email: &start.email,
            cpf: start.cpf.as_deref(),
            price_per_kwh: Some(start.tariff.price_per_kwh),
            fixed_connection_cost: Some(start.tariff.fixed_connection_cost),
        }
    }
}

/// A tariff part: not below zero, at most `max` reais.
fn reais(v: &mut crate::error::Validator, field: &str, amount: Option<Decimal>, max: i64, range: &str) {
    match amount {
        Some(a) if a < Decimal::ZERO => v.check(false, field, "must not be below zero"),
        Some(a) => v.check(a <= Decimal::new(max, 0), field, range),
        None => {}
    }
}

/// Every rule the start breaks, in the order they are reported (amount, e-mail,
/// CPF, connector, station, tariff); empty when it may start.
pub fn start_errors(start: StartFields<'_>) -> Vec<FieldError> {
    let mut v = crate::error::Validator::default();
    if start.amount <= 0 {
        v.check(false, "amount", "must be above zero (cents)");
    } else {
        v.check(start.amount <= 10_000_000, "amount", "must be 1 to 10000000 cents");
    }
    v.check(email_valid(start.email), "email", "is not a valid e-mail address");
    if let Some(cpf) = start.cpf {
        v.check(cpf_valid(cpf), "cpf", "is not a valid CPF (check digits)");
    }
    v.check(start.connector_id >= 0, "connectorId", "must be 0 or more");
    v.check(start.station_id > 0, "stationId", "must be a positive integer");
    reais(&mut v, "charger.price", start.price_per_kwh, 100, "must be between 0 and 100 reais per kWh");
    reais(
        &mut v,
        "charger.fixed_connection_cost",
        start.fixed_connection_cost,
        1000,
        "must be between 0 and 1000 reais",
    );
    v.into_errors()
}
