//! Typed identifiers. No bare `String` or `Uuid` crosses a crate boundary.

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainError;

/// The tenant. Every read and write is scoped to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct CompanyId(pub Uuid);

impl CompanyId {
    /// The inner uuid.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CompanyId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A charge point's identity, as it appears in the OCPP URL (`/ocpp/EVSE-001`).
///
/// Unique across the whole platform, because a charger connects to the gateway
/// with nothing but this id. 1 to 48 characters (the OCPP 2.0.1 limit) from the
/// URL-safe set `A-Z a-z 0-9 . _ - :`; `stats` is reserved by the REST routes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TerminalId(String);

impl TerminalId {
    /// Longest id accepted (OCPP 2.0.1 identity limit).
    pub const MAX_LEN: usize = 48;

    /// Whether `raw` has an id's shape: 1 to [`Self::MAX_LEN`] characters from
    /// A-Z, a-z, 0-9, '.', '_', '-' and ':' (`parse` also reserves "stats").
    pub fn is_shaped(raw: &str) -> bool {
        let ok_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        !raw.is_empty() && raw.len() <= Self::MAX_LEN && ok_chars
    }

    /// Validates and wraps an id.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if !Self::is_shaped(raw) {
            return Err(DomainError::field(
                "id",
                "must be 1 to 48 characters from A-Z, a-z, 0-9, '.', '_', '-' and ':'",
            ));
        }
        if raw.eq_ignore_ascii_case("stats") {
            return Err(DomainError::field("id", "'stats' is reserved"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TerminalId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TerminalId> for String {
    fn from(value: TerminalId) -> Self {
        value.0
    }
}

impl fmt::Display for TerminalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_ids_are_url_safe_and_bounded() {
        assert!(TerminalId::parse("EVSE-001").is_ok());
        assert!(TerminalId::parse("site:7.bay_2").is_ok());
        assert!(TerminalId::parse("").is_err());
        assert!(TerminalId::parse("has space").is_err());
        assert!(TerminalId::parse("a/b").is_err());
        assert!(TerminalId::parse("stats").is_err());
        assert!(TerminalId::parse(&"x".repeat(49)).is_err());
        assert!(TerminalId::parse(&"x".repeat(48)).is_ok());
    }

    #[test]
    fn an_id_shape_is_what_parse_accepts_except_the_reserved_name() {
        for raw in ["EVSE-001", "site:7.bay_2", "STATS", "stats", "", "has space", "a/b", "é"] {
            let reserved = raw.eq_ignore_ascii_case("stats");
            assert_eq!(TerminalId::is_shaped(raw), TerminalId::parse(raw).is_ok() || reserved, "{raw:?}");
        }
        assert!(TerminalId::is_shaped(&"x".repeat(48)) && !TerminalId::is_shaped(&"x".repeat(49)));
    }
}
