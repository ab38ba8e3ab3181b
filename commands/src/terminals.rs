//! Command handlers of the terminal aggregate.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use domain::{
    terminal::{implied_profile, Terminal, TerminalCommand, TerminalEvent, TerminalState},
    DomainError, DomainEvent, TerminalId,
};
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use crate::{
    handler::{execute, CommandContext, CommandError, Executed},
    store::{EventStore, StoreError},
};

/// Hashes an OCPP basic-auth password with Argon2id (on a blocking thread: it
/// is deliberately slow).
/// `field` names the request field in the error.
pub async fn hash_password(password: String, field: &str) -> Result<String, DomainError> {
    if !(16..=40).contains(&password.len()) {
        // OCPP security profile 1/2: 16 to 40 characters (passwordString).
        return Err(DomainError::field(field, "must be 16 to 40 characters"));
    }
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|_| DomainError::InvalidState("password hashing was interrupted".into()))?
    .map_err(|e| DomainError::InvalidState(format!("password could not be hashed: {e}")))
}

/// Checks a password against a stored Argon2 PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// What a terminal command answers: the terminal id, its status and the stream
/// version after the command. The HTTP layer renders the terminal from the read
/// model once it has caught up, and this outcome when it has not.
fn outcome(id: &TerminalId) -> impl Fn(&TerminalState, i64) -> Value + '_ {
    move |state, version| {
        let status = match state {
            TerminalState::Registered(t) => Some(t.status.as_str()),
            TerminalState::Unregistered => None,
        };
        json!({ "terminalId": id.as_str(), "status": status, "version": version })
    }
}

/// Executes a terminal command.
pub async fn handle(
    store: &EventStore,
    ctx: &CommandContext,
    id: &TerminalId,
    command: TerminalCommand,
) -> Result<Executed, CommandError> {
    let command_type = match &command {
        TerminalCommand::Register(_) => "terminal.register",
        TerminalCommand::AutoRegister(_) => "terminal.auto_register",
        TerminalCommand::ReportHealth(_) => "terminal.report_health",
        TerminalCommand::ChangeStatus(_) => "terminal.change_status",
        TerminalCommand::SetCredentials(_) => "terminal.set_charger_credentials",
    };
    execute::<Terminal, _>(store, &Terminal::stream_id(id), ctx, command_type, command, outcome(id)).await
}

/// What the OCPP handshake checks a charger against, as the log has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargerCredentials {
    /// The owning company.
    pub company_id: Uuid,
    /// OCPP security profile (0, 1 or 2).
    pub security_profile: u8,
    /// Argon2id hash of the current password (none for profile 0).
    pub password_hash: Option<String>,
}

/// The current credentials of a terminal, read from its stream (not from a
/// read model, so a rotation is in force as soon as it is appended). Only the
/// registration and credential events are read, whatever else the stream holds.
pub async fn credentials(store: &EventStore, id: &TerminalId) -> Result<Option<ChargerCredentials>, CommandError> {
    let rows = sqlx::query(
        "SELECT event_type, schema_version, payload FROM events \
         WHERE stream_id = $1 AND event_type = ANY($2) ORDER BY stream_version",
    )
    .bind(Terminal::stream_id(id))
    .bind(["terminal.registered", "terminal.charger_credentials_set"])
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::from)?;
    let mut found: Option<ChargerCredentials> = None;
    for row in rows {
        let (event_type, version, payload): (String, i32, Value) = (
            row.try_get("event_type").map_err(StoreError::from)?,
            row.try_get("schema_version").map_err(StoreError::from)?,
            row.try_get("payload").map_err(StoreError::from)?,
        );
        let event = TerminalEvent::from_record(&event_type, version as u32, payload)?;
        match (event, found.as_mut()) {
            (TerminalEvent::Registered(r), None) => {
                found = Some(ChargerCredentials {
                    company_id: r.company_id.as_uuid(),
                    security_profile: implied_profile(r.password_hash.as_deref()),
                    password_hash: r.password_hash,
                });
            }
            (TerminalEvent::CredentialsSet(c), Some(current)) => {
                current.security_profile = c.security_profile;
                current.password_hash = c.password_hash;
            }
            _ => {}
        }
    }
    Ok(found)
}
