//! What starting an OCPP session needs to know from the `terminals` and `ocpp`
//! read models, as a port (implemented by `projections`): whether the company
//! has the charger, the connectors it was registered with, what the asked
//! connector last reported, whether the charger is connected and which
//! protocol it speaks. The rules that decide from these answers are the
//! session service's ([`super::check`]).

use async_trait::async_trait;
use domain::{terminal::OcppVersion, CompanyId, TerminalId};

pub use crate::read_model::ReadModelError;

/// A registered charger as the read models know it, seen from one connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargerSnapshot {
    /// The connector ids the terminal was registered with.
    pub registered_connectors: Vec<i64>,
    /// The status the asked connector last reported (`Available`, `Charging`,
    /// …); `None` before its first report.
    pub connector_status: Option<String>,
    /// Whether the charger is connected to a gateway, as the read model last
    /// heard (`false` if it never connected).
    pub connected: bool,
    /// The protocol it negotiated when it last connected; `None` if it never did.
    pub protocol: Option<OcppVersion>,
}

/// The session service's questions about chargers.
#[async_trait]
pub trait ChargerDirectory: Send + Sync {
    /// The company's terminal `charge_point` with what is known of its
    /// `connector` (the first EVSE's, when several EVSEs number connectors
    /// alike); `None` when the company has no such terminal.
    async fn charger(
        &self,
        company: CompanyId,
        charge_point: &TerminalId,
        connector: i64,
    ) -> Result<Option<ChargerSnapshot>, ReadModelError>;
}
