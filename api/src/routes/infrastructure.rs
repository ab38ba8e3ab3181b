//! Charging Infrastructure (seed 002): station-CPMS mappings, connector status,
//! adapter health and per-company adapter configuration, under
//! `/v1/charging-infrastructure`.
//!
//! Writes go through the mapping, registry and config aggregates into the log;
//! reads come from the `infrastructure` read model (joined with `rm_ocpp` for
//! connectors). Everything that depends on how a charge point is reached goes
//! through a [`CpmsAdapter`] looked up by adapter type (ADR 0013), so another
//! adapter (OCPI) plugs in without touching these routes.

mod adapters;
mod config;
mod connectivity;
mod mappings;
pub(crate) mod status;

use axum::{extract::FromRequestParts, http::request::Parts};
use commands::{
    infrastructure::{adapter::CpmsAdapter, credentials::CredentialCipher},
    CommandContext,
};
use domain::infrastructure::AdapterType;
use secrecy::ExposeSecret;
use utoipa::OpenApi;
use uuid::Uuid;

pub use self::{
    config::{get_config, update_config},
    connectivity::test_mapping,
    mappings::{create_mapping, delete_mapping, get_mapping, list_mappings, update_mapping},
    status::{adapter_health, connector_summary, connectors},
};
use crate::{
    auth::Caller,
    error::ApiError,
    extract::{hmac_sha256, idempotency_key},
    state::AppState,
};

/// The section's part of the OpenAPI document: paths relative to
/// `/v1/charging-infrastructure`, where `ApiDoc` nests it.
#[derive(OpenApi)]
#[openapi(
    paths(
        mappings::list_mappings, mappings::create_mapping, mappings::get_mapping, mappings::update_mapping,
        mappings::delete_mapping, connectivity::test_mapping, status::connectors, status::connector_summary,
        status::adapter_health, config::get_config, config::update_config,
    ),
    tags((name = "Charging Infrastructure",
          description = "Station-CPMS mappings, connector status, adapter health, CPMS configuration"))
)]
pub struct InfrastructureApi;

/// Tag of every operation of the section.
const TAG: &str = "Charging Infrastructure";

fn context(caller: &Caller, key: Option<String>, fingerprint: Vec<u8>) -> CommandContext {
    CommandContext {
        company_id: caller.company_id,
        command_id: key,
        request_hash: fingerprint,
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        actor: caller.actor.clone(),
    }
}

/// The adapter type in a path: unknown types do not exist (404).
fn adapter_in_path(raw: &str) -> Result<AdapterType, ApiError> {
    AdapterType::parse(raw).ok_or_else(|| ApiError::NotFound(format!("adapter type {raw:?} is not known")))
}

/// The adapter of a type, if this process has one.
fn adapter_of(state: &AppState, kind: AdapterType) -> Result<std::sync::Arc<dyn CpmsAdapter>, ApiError> {
    adapters::all(state).get(kind).ok_or_else(|| ApiError::Unavailable(format!("no {kind} adapter runs here")))
}

/// Seals and opens credentials with a key derived from `CHARGELEDGER_SECRETS_KEY`
/// (never the JWT secret). The roles that serve requests refuse to start
/// without it; should one run without it anyway, credential routes answer 503.
fn cipher(state: &AppState) -> Result<CredentialCipher, ApiError> {
    let key = state.config.secrets_key.as_ref().ok_or_else(|| {
        ApiError::Unavailable("CPMS credentials cannot be stored or read: CHARGELEDGER_SECRETS_KEY is not set".into())
    })?;
    CredentialCipher::derive(key.expose_secret().as_bytes()).map_err(ApiError::internal)
}

/// A command without a body (DELETE, POST …/test): its `Idempotency-Key` and a
/// fingerprint of method and path (keyed like [`crate::extract::JsonCommand`]'s).
#[derive(Debug)]
pub struct BodylessCommand {
    /// `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
    /// HMAC-SHA-256 over method and path.
    pub fingerprint: Vec<u8>,
}

impl FromRequestParts<AppState> for BodylessCommand {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let message = format!("{}\0{}\0", parts.method, parts.uri.path());
        Ok(Self {
            idempotency_key: crate::extract::scoped_key(parts, idempotency_key(&parts.headers)?),
            fingerprint: hmac_sha256(&state.config.fingerprint_key(), message.as_bytes()).to_vec(),
        })
    }
}
