//! Per-company CPMS adapter settings. Credential values are write-only: they
//! are sealed at rest and never returned or logged; reads show their names.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    Json,
};
use commands::infrastructure::{self as cmd, ConfigChange, ConfigureError};
use domain::infrastructure::{config::AdapterSettings, AdapterType};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{adapter_in_path, cipher, context, TAG};
use crate::{
    auth::Caller,
    error::ApiError,
    extract::JsonCommand,
    routes::{idempotent, Stored},
    state::AppState,
};

/// Changes an adapter's settings. Absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateConfigRequest {
    /// Timeout of each request to a charge point or CPMS, 100 to 120000 ms (the mapping test uses it).
    #[schema(example = 5000)]
    pub timeout_ms: Option<i64>,
    /// Retries after a timeout, 0 to 10.
    #[schema(example = 1)]
    pub retries: Option<i64>,
    /// Credentials by name: a string sets one (write-only: stored sealed, never returned), `null` removes it.
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>, example = json!({"token": "s3cr3t", "oldToken": null}))]
    pub credentials: Option<BTreeMap<String, Option<SecretString>>>,
}

/// One adapter's settings. Credentials show as names only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdapterConfigView {
    /// Adapter type these settings apply to (`ocpp`).
    pub adapter_type: String,
    /// Timeout of each request, ms.
    pub timeout_ms: i64,
    /// Retries after a timeout.
    pub retries: i64,
    /// `{name: "set"}` for each credential that has a value; values are never returned.
    #[schema(example = json!({"token": "set"}))]
    pub credentials: BTreeMap<String, String>,
    /// Whether the company configured it (otherwise these are the defaults).
    pub configured: bool,
    /// Last change.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The company's CPMS configuration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigView {
    /// One entry per adapter type.
    pub adapters: Vec<AdapterConfigView>,
}

fn markers(names: impl IntoIterator<Item = String>) -> BTreeMap<String, String> {
    names.into_iter().map(|n| (n, "set".to_owned())).collect()
}

/// Get the CPMS configuration (every adapter type, with its defaults when never configured).
#[utoipa::path(get, path = "/config", tag = TAG,
    responses((status = 200, body = ConfigView), (status = 401, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_config(State(state): State<AppState>, caller: Caller) -> Result<Json<ConfigView>, ApiError> {
    let configured = projections::infrastructure::adapter_configs(&state.pool, caller.company_id).await?;
    let adapters = AdapterType::ALL
        .into_iter()
        .map(|kind| match configured.iter().find(|c| c.adapter_type == kind.as_str()) {
            Some(c) => AdapterConfigView {
                adapter_type: c.adapter_type.clone(),
                timeout_ms: c.timeout_ms,
                retries: c.retries,
                credentials: markers(c.credential_names.iter().cloned()),
                configured: true,
                updated_at: Some(c.updated_at),
            },
            None => {
                let d = AdapterSettings::defaults(kind);
                AdapterConfigView {
                    adapter_type: kind.as_str().into(),
                    timeout_ms: d.timeout_ms,
                    retries: d.retries,
                    credentials: markers(d.credentials),
                    configured: false,
                    updated_at: None,
                }
            }
        })
        .collect();
    Ok(Json(ConfigView { adapters }))
}

/// Update a CPMS adapter's configuration (timeouts, retries, write-only credentials).
#[utoipa::path(patch, path = "/config/{adapterType}", tag = TAG, request_body = UpdateConfigRequest,
    params(("adapterType" = String, Path, description = "Adapter type (`ocpp`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = AdapterConfigView), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem, description = "Unknown adapter type"),
        (status = 422, body = crate::error::Problem, description = "Out of range, or an invalid credential name or value")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(adapter_type): Path<String>,
    command: JsonCommand<UpdateConfigRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let adapter_type = adapter_in_path(&adapter_type)?;
    let JsonCommand { body, idempotency_key, fingerprint } = command;
    let ctx = context(&caller, idempotency_key.clone(), fingerprint.clone());
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let change = ConfigChange {
            adapter_type,
            timeout_ms: body.timeout_ms,
            retries: body.retries,
            credentials: body.credentials.unwrap_or_default(),
            now: crate::routes::now(&state),
        };
        let executed = cmd::configure(&state.store, &cipher(&state)?, &ctx, change).await.map_err(|e| match e {
            ConfigureError::Command(e) => ApiError::from(e),
            ConfigureError::Credential(e) => ApiError::internal(e),
        })?;
        state.metrics.appended(&executed.events);
        if let Some(position) = executed.last_position() {
            // Best effort: the answer comes from the write model.
            let wait = state.config.consistency_wait;
            projections::runtime::wait_for(&state.pool, projections::infrastructure::NAME, position, wait).await;
        }
        Ok(Stored { status: StatusCode::OK, location: None, body: executed.outcome })
    })
    .await
}
