//! Command handlers of the terminal aggregate.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use domain::{
    terminal::{Terminal, TerminalCommand, TerminalState},
    DomainError, TerminalId,
};
use serde_json::{json, Value};

use crate::{
    handler::{execute, CommandContext, CommandError, Executed},
    store::EventStore,
};

/// Hashes an OCPP basic-auth password with Argon2id (on a blocking thread: it
/// is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, DomainError> {
    if !(16..=40).contains(&password.len()) {
        // OCPP security profile 1/2: 16 to 40 characters (passwordString).
        return Err(DomainError::field("chargerPassword", "must be 16 to 40 characters"));
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
    };
    execute::<Terminal, _>(store, &Terminal::stream_id(id), ctx, command_type, command, outcome(id)).await
}
