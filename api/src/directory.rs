//! The charger directory of the OCPP gateway, over the terminal streams of the
//! log (not the read model: a password rotation or a registration is in force
//! as soon as it is appended) and the terminal aggregate (auto-registration).

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use commands::{CommandContext, CommandError, EventStore};
use domain::{
    terminal::{AutoRegisterTerminal, OcppVersion, TerminalCommand},
    CompanyId, TerminalId,
};
use gateways::ocpp::{ChargerDirectory, ChargerRecord};
use sqlx::PgPool;
use uuid::Uuid;

/// Looks chargers up among registered terminals.
#[derive(Debug, Clone)]
pub struct TerminalDirectory {
    /// Read-model pool.
    pub pool: PgPool,
    /// The log (auto-registration).
    pub store: EventStore,
}

#[async_trait]
impl ChargerDirectory for TerminalDirectory {
    async fn find(&self, id: &TerminalId) -> Result<Option<ChargerRecord>, CommandError> {
        let found = commands::terminals::credentials(&self.store, id).await?;
        Ok(found.map(|c| ChargerRecord { company_id: c.company_id, password_hash: c.password_hash }))
    }

    async fn auto_register(
        &self,
        id: &TerminalId,
        company: Uuid,
        version: OcppVersion,
    ) -> Result<ChargerRecord, CommandError> {
        let ctx = CommandContext {
            company_id: company,
            command_id: None,
            request_hash: vec![],
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            actor: format!("charger:{id}"),
        };
        let command = TerminalCommand::AutoRegister(AutoRegisterTerminal {
            company_id: CompanyId(company),
            terminal_id: id.clone(),
            ocpp_version: version,
            now: Utc::now().trunc_subsecs(6),
        });
        // Registered meanwhile (by an operator, or a concurrent connection of
        // the same id) is refused by the aggregate: the handshake fails closed
        // and the charger's retry finds the registration.
        commands::terminals::handle(&self.store, &ctx, id, command).await?;
        Ok(ChargerRecord { company_id: company, password_hash: None })
    }
}
