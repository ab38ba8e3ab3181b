//! The fiscal receipt of a session, from its events.

use chrono::{DateTime, Utc};
use domain::{
    session::{SessionEvent, SessionStarted, Settled, Settlement},
    DomainEvent,
};

use crate::store::RecordedEvent;

/// What a receipt says.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    /// E-mail address the receipt goes to (the session's start `email`).
    pub to: String,
    /// The start.
    pub started: SessionStarted,
    /// When energy began to flow.
    pub charging_from: Option<DateTime<Utc>>,
    /// When it stopped.
    pub charging_to: Option<DateTime<Utc>>,
    /// The cost.
    pub settlement: Settlement,
    /// Cents held.
    pub authorized: i64,
    /// The capture.
    pub settled: Settled,
}

/// Reais with at least two decimals (a tariff may carry more).
fn decimal_reais(d: rust_decimal::Decimal) -> String {
    if d.scale() < 2 {
        format!("{:.2}", d)
    } else {
        d.to_string()
    }
}

fn reais(cents: i64) -> String {
    format!("R$ {}.{:02}", cents / 100, (cents % 100).abs())
}

impl Receipt {
    /// Builds the receipt of a completed session's history.
    pub fn from_history(events: &[RecordedEvent]) -> Option<Self> {
        let (mut started, mut from, mut to, mut settlement, mut authorized, mut settled) =
            (None, None, None, None, 0, None);
        for e in events {
            match e.decode::<SessionEvent>().ok()? {
                SessionEvent::Started(s) => started = Some(s),
                SessionEvent::PaymentAuthorized(a) => authorized = a.amount,
                SessionEvent::ChargingStarted(c) => from = Some(c.at),
                SessionEvent::ChargingStopped(p) => to = Some(p.at),
                SessionEvent::SettlementComputed(s) => settlement = Some(s),
                SessionEvent::Settled(s) => settled = Some(s),
                other => {
                    let _ = other.event_type();
                }
            }
        }
        let started = started?;
        Some(Self {
            to: started.email.clone(),
            started,
            charging_from: from,
            charging_to: to,
            settlement: settlement?,
            authorized,
            settled: settled?,
        })
    }

    /// Subject line.
    pub fn subject(&self) -> String {
        format!("Recibo de recarga — {} — {}", self.started.charge_point_id, reais(self.settled.captured_cents))
    }

    /// Plain-text body with every figure an auditor needs.
    pub fn body(&self) -> String {
        let fmt = |t: Option<DateTime<Utc>>| {
            t.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        };
        let minutes = match (self.charging_from, self.charging_to) {
            (Some(a), Some(b)) => (b - a).num_seconds().max(0) / 60,
            _ => 0,
        };
        let kwh = rust_decimal::Decimal::new(self.settlement.energy_wh, 3);
        let tariff = &self.started.tariff;
        format!(
            "Recibo de recarga / Charging receipt\n\
             Sessão / Session: {session}\n\
             Estação / Station: {station}\n\
             Carregador / Charger: {cp}, conector / connector {connector}\n\
             Início / Start: {start}\n\
             Fim / End: {end}\n\
             Duração / Duration: {minutes} min\n\
             Energia / Energy: {kwh} kWh\n\
             Preço por kWh / Price per kWh: R$ {price}\n\
             Custo fixo de conexão / Fixed connection cost: R$ {fixed}\n\
             Total: {total} (exato / exact R$ {exact})\n\
             Pré-autorizado / Pre-authorized: {authorized}\n\
             Capturado / Captured: {captured}\n\
             Liberado / Released: {released}\n",
            session = self.started.session_id,
            station = self.started.station_id,
            cp = self.started.charge_point_id,
            connector = self.started.connector_id,
            start = fmt(self.charging_from),
            end = fmt(self.charging_to),
            price = decimal_reais(tariff.price_per_kwh),
            fixed = decimal_reais(tariff.fixed_connection_cost),
            total = reais(self.settlement.cost_cents),
            exact = self.settlement.cost_exact,
            authorized = reais(self.authorized),
            captured = reais(self.settled.captured_cents),
            released = reais(self.settled.released_cents),
        )
    }
}
