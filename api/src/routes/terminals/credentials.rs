//! `PUT /v1/terminals/{id}/charger-password`: sets or rotates the OCPP
//! basic-auth password of a charger (issue 10, rule 6).
//!
//! The gateway's handshake reads the credentials from the terminal's stream
//! (`commands::terminals::credentials`), not from the read model, so the old
//! password is refused from the moment the rotation is appended; a charger
//! already connected keeps its connection until it reconnects.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use commands::terminals::hash_password;
use domain::terminal::{SetChargerCredentials, TerminalCommand};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{answer, context, read_after, terminal_id};
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, routes::idempotent, state::AppState};

/// Sets or rotates a charger's OCPP credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChargerPasswordRequest {
    /// The new HTTP Basic password (16 to 40 characters), stored as an Argon2id
    /// hash and never shown. Omit it only together with `"securityProfile": 0`.
    pub password: Option<String>,
    /// OCPP security profile: 0 (no credentials; only when given explicitly),
    /// 1 (HTTP Basic) or 2 (TLS and HTTP Basic). Absent: the terminal keeps
    /// profile 1 or 2, and a profile 0 terminal becomes profile 1.
    #[schema(example = 1)]
    pub security_profile: Option<u8>,
}

/// Set or rotate a charger's OCPP password (the old one stops working at once).
#[utoipa::path(put, path = "/v1/terminals/{id}/charger-password", tag = "Terminals", request_body = ChargerPasswordRequest,
    params(("id" = String, Path, description = "Terminal id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 200, body = projections::terminals::TerminalView, description = "Set; the new password is in force"),
        (status = 202, description = "Set and in force; the read model has not caught up yet"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem, description = "Password missing or not 16 to 40 characters, or a password with profile 0")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn set_charger_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<ChargerPasswordRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = terminal_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    let key = idempotency_key.clone();
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint.clone(), async {
        let password_hash = match body.password {
            Some(p) => Some(hash_password(p, "password").await?),
            None => None,
        };
        let command = TerminalCommand::SetCredentials(SetChargerCredentials {
            company_id: domain::CompanyId(caller.company_id),
            password_hash,
            security_profile: body.security_profile,
            now: crate::routes::now(&state),
        });
        let executed =
            commands::terminals::handle(&state.store, &context(&caller, key, fingerprint), &id, command).await?;
        let view = read_after(&state, &caller, &id, &executed).await?;
        Ok(answer(StatusCode::OK, None, view, executed))
    })
    .await
}
