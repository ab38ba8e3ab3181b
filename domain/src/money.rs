//! Money and energy.
//!
//! Money is `Decimal` inside and integer cents on the wire (`5000` = R$ 50.00).
//! Rounding happens once, in [`Money::to_cents`], half away from zero (the rule a
//! Brazilian receipt uses). Energy is integer watt-hours. No floats anywhere.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// An amount of Brazilian reais.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Money(Decimal);

impl Money {
    /// From integer cents, exactly.
    pub fn from_cents(cents: i64) -> Self {
        Self(Decimal::new(cents, 2))
    }

    /// From a decimal amount of reais (unrounded; may carry fractions of a cent).
    pub fn from_decimal(amount: Decimal) -> Self {
        Self(amount)
    }

    /// The exact amount.
    pub fn amount(&self) -> Decimal {
        self.0
    }

    /// Rounds to whole cents, half away from zero. The single rounding point.
    /// `None` when the amount does not fit in `i64` cents.
    pub fn to_cents(&self) -> Option<i64> {
        let cents = (self.0 * Decimal::ONE_HUNDRED).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        i64::try_from(cents).ok()
    }
}

/// Energy in watt-hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Energy(pub i64);

impl Energy {
    /// Watt-hours.
    pub fn wh(&self) -> i64 {
        self.0
    }

    /// Kilowatt-hours, exactly.
    pub fn kwh(&self) -> Decimal {
        Decimal::new(self.0, 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_trip_and_round_once_half_away_from_zero() {
        assert_eq!(Money::from_cents(5000).to_cents(), Some(5000));
        assert_eq!(Money::from_decimal(Decimal::new(12345, 4)).to_cents(), Some(123)); // 1.2345
        assert_eq!(Money::from_decimal(Decimal::new(1235, 3)).to_cents(), Some(124)); // 1.235
        assert_eq!(Energy(1500).kwh(), Decimal::new(15, 1));
    }
}
