//! Running one charger command: check it, record it on its own stream, and
//! wait (woken by appends) until the gateway holding the connection records the
//! charger's answer, a failure, or the deadline passes.

use std::time::Duration;

use axum::http::StatusCode;
use commands::{
    ocpp_commands::{self, CommandStatus},
    Metadata,
};
use domain::{
    charger::{
        command::{OcppCommandFailed, OcppCommandRequested},
        requests::{csms_actions, ChargerRequest},
    },
    terminal::OcppVersion,
    FieldError, TerminalId,
};
use gateways::ocpp::schema;
use serde_json::json;
use uuid::Uuid;

use super::dto::result;
use crate::{auth::Caller, error::ApiError, routes::Stored, state::AppState};

/// The charger a command goes to.
pub(super) struct Target {
    /// The charger.
    pub(super) id: TerminalId,
    /// The protocol it speaks (or last spoke).
    pub(super) version: OcppVersion,
    /// Whether some gateway holds a connection to it now.
    pub(super) connected: bool,
}

/// The OCPP call to make.
pub(super) struct Call {
    /// Action and payload, in the charger's protocol.
    pub(super) request: ChargerRequest,
    /// Queue it when the charger is offline.
    pub(super) deliver_on_reconnect: bool,
    /// How long to wait for the answer (the configured default when `None`).
    pub(super) timeout_ms: Option<i64>,
}

impl Call {
    /// `request` with the default timeout.
    pub(super) fn new(request: ChargerRequest, deliver_on_reconnect: bool) -> Self {
        Self { request, deliver_on_reconnect, timeout_ms: None }
    }
}

/// `action` as one the CSMS may send to a charger speaking `version`, or the
/// field error listing those it may.
pub(super) fn allowed_action(version: OcppVersion, action: &str) -> Result<&'static str, ApiError> {
    let allowed = csms_actions(version);
    allowed.iter().copied().find(|a| *a == action).ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new("action", format!("must be one of {}", allowed.join(", ")))])
    })
}

/// Records the command, waits for its fate, answers.
pub(super) async fn run_command(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    call: Call,
) -> Result<Stored, ApiError> {
    let Target { id, version, connected } = target;
    let (version, connected) = (*version, *connected);
    let Call { request: ChargerRequest { action, payload }, deliver_on_reconnect, timeout_ms } = call;
    allowed_action(version, action)?;
    if let Err((_, problem)) = schema::validate(version, action, false, &payload) {
        return Err(ApiError::Validation(vec![FieldError::new("payload", problem)]));
    }
    if !connected && !deliver_on_reconnect {
        return Err(ApiError::Conflict(format!("{id} is offline; send deliverOnReconnect: true to queue the command")));
    }
    let timeout_ms = timeout_ms.unwrap_or(state.config.ocpp.call_timeout.as_millis() as i64);
    if !(100..=600_000).contains(&timeout_ms) {
        return Err(ApiError::Validation(vec![FieldError::new("timeoutMs", "must be between 100 and 600000")]));
    }
    let command_id = Uuid::now_v7();
    let request = OcppCommandRequested {
        command_id,
        charge_point_id: id.to_string(),
        action: action.into(),
        payload,
        deliver_on_reconnect,
        timeout_ms,
        requested_at: crate::routes::now(state),
    };
    let metadata = Metadata {
        company_id: Some(caller.company_id),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: caller.actor.clone(),
        command_id: None,
    };
    let recorded = ocpp_commands::request(&state.store, metadata.clone(), request).await.map_err(ApiError::internal)?;
    state.metrics.appended(std::slice::from_ref(&recorded));
    let location = Some(format!("/v1/terminals/{id}/commands/{command_id}"));
    if !connected {
        let body = json!(result(command_id, action, &CommandStatus::Pending));
        return Ok(Stored { status: StatusCode::ACCEPTED, location, body });
    }
    // Queue time plus the charger's answer time, then a little slack.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms as u64) * 2 + Duration::from_secs(1);
    // Woken by appends (this process's and those other processes announce),
    // not by polling; subscribed before the first read so no answer is missed.
    let mut appended = state.store.subscribe();
    loop {
        let view = ocpp_commands::view(&state.store, command_id).await.map_err(ApiError::internal)?;
        let Some(view) = view else { return Err(ApiError::internal("command stream vanished")) };
        match &view.status {
            CommandStatus::Answered(_) => {
                return Ok(Stored {
                    status: StatusCode::OK,
                    location,
                    body: json!(result(command_id, action, &view.status)),
                })
            }
            CommandStatus::Failed(f) if f.is_timeout() => {
                return Err(ApiError::GatewayTimeout(format!("{id} did not answer {action} in time")))
            }
            CommandStatus::Failed(f) => {
                let r = result(command_id, action, &view.status);
                return Err(ApiError::BadGateway(format!(
                    "{id} did not carry out {action}: {}",
                    r.error.unwrap_or_else(|| f.reason.clone())
                )));
            }
            CommandStatus::Pending | CommandStatus::Sent if tokio::time::Instant::now() >= deadline => {
                // Give up; if it was never sent, make sure it never will be.
                if view.status == CommandStatus::Pending {
                    let gave_up = ocpp_commands::fail(
                        &state.store,
                        command_id,
                        view.version,
                        metadata.clone(),
                        OcppCommandFailed::TIMEOUT,
                        None,
                        Some("not sent in time".into()),
                    )
                    .await
                    .map_err(ApiError::internal)?;
                    if !gave_up {
                        continue;
                    }
                }
                return Err(ApiError::GatewayTimeout(format!("{id} did not answer {action} in time")));
            }
            _ => {
                // A re-check at least every second covers a missed announcement.
                let recheck = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    changed = appended.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep_until(recheck).await;
                        }
                    }
                    _ = tokio::time::sleep_until(recheck) => {}
                }
            }
        }
    }
}
