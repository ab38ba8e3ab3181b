//! Station-CPMS mappings: list, create, read, update, delete (a `deleted`
//! event; the history stays).

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::StatusCode,
    response::Response,
    Json,
};
use commands::{infrastructure as cmd, Executed};
use domain::{
    infrastructure::{
        mapping::{CreateMapping, DeleteMapping, MappingCommand, UpdateMapping, MAX_CHARGE_POINTS},
        AdapterType,
    },
    CompanyId, FieldError,
};
use projections::infrastructure::{self as rm, MappingView};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{adapter_of, context, BodylessCommand, TAG};
use crate::{
    auth::Caller,
    error::ApiError,
    extract::JsonCommand,
    routes::{idempotent, page, Stored},
    state::AppState,
};

/// Maps a station to a CPMS adapter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateMappingRequest {
    /// The station (at most one live mapping each).
    #[schema(example = 10)]
    pub station_id: i64,
    /// `ocpp`: the station's charge points connect to our OCPP gateway.
    #[schema(example = "ocpp")]
    pub adapter_type: String,
    /// CPMS-side charge point ids; for `ocpp`, terminals of your company (1 to 64).
    #[schema(example = json!(["EVSE-001", "EVSE-002"]))]
    pub charge_point_ids: Vec<String>,
}

/// Changes a mapping. Absent fields keep their value; the station cannot change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMappingRequest {
    /// Must be the mapping's station when given.
    pub station_id: Option<i64>,
    /// New adapter type.
    pub adapter_type: Option<String>,
    /// The whole new list of charge point ids.
    pub charge_point_ids: Option<Vec<String>>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingListParams {
    /// Only this station's mapping.
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    pub station_id: Option<i64>,
    /// Only this adapter type.
    #[param(schema_with = crate::openapi::enums::adapter_type)]
    pub adapter_type: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(schema_with = crate::openapi::enums::keyset_cursor)]
    pub cursor: Option<String>,
}

/// A page of mappings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingPage {
    /// Newest first.
    pub data: Vec<MappingView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(super) fn mapping_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("mapping not found".into()))
}

fn adapter_field(raw: &str) -> Result<AdapterType, ApiError> {
    AdapterType::parse(raw).ok_or_else(|| {
        let known: Vec<&str> = AdapterType::ALL.iter().map(AdapterType::as_str).collect();
        ApiError::Validation(vec![FieldError::new("adapterType", format!("must be one of {}", known.join(", ")))])
    })
}

/// Those of `ids` the adapter cannot reach for the caller (checked only for a
/// list the aggregate would accept in size, so a huge list costs nothing).
async fn foreign(
    state: &AppState,
    caller: &Caller,
    adapter: AdapterType,
    ids: &[String],
) -> Result<Vec<String>, ApiError> {
    if ids.is_empty() || ids.len() > MAX_CHARGE_POINTS {
        return Ok(vec![]);
    }
    let adapter = adapter_of(state, adapter)?;
    adapter.foreign_charge_points(caller.company_id, ids).await.map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// Waits (up to the consistency wait) for the read model to apply the command.
pub(super) async fn caught_up(state: &AppState, id: Uuid, executed: &Executed) -> Result<bool, ApiError> {
    state.metrics.appended(&executed.events);
    let position = match executed.last_position() {
        Some(position) => Some(position),
        // A replayed command appended nothing now: wait for what its stream holds.
        None if executed.replayed => state
            .store
            .stream_head(&domain::infrastructure::mapping::CpmsMapping::stream_id(id))
            .await
            .map_err(ApiError::internal)?,
        None => None,
    };
    Ok(match position {
        Some(position) => {
            projections::runtime::wait_for(&state.pool, rm::NAME, position, state.config.consistency_wait).await
        }
        None => true,
    })
}

/// The read model's view once caught up (2xx), or 202 with the command's outcome.
async fn answer(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    status: StatusCode,
    executed: Executed,
) -> Result<Stored, ApiError> {
    let location = Some(format!("/v1/charging-infrastructure/mappings/{id}"));
    if caught_up(state, id, &executed).await? {
        if let Some(view) = rm::get_mapping(&state.pool, caller.company_id, id).await? {
            return Ok(Stored { status, location, body: json!(view) });
        }
    }
    Ok(Stored { status: StatusCode::ACCEPTED, location, body: executed.outcome })
}

/// List station-CPMS mappings (filters: station, adapter type; cursor pagination).
#[utoipa::path(get, path = "/mappings", tag = TAG, params(MappingListParams),
    responses((status = 200, body = MappingPage), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_mappings(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<MappingListParams>, QueryRejection>,
) -> Result<Json<MappingPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let limit = page::limit(p.limit)?;
    let after = page::after(p.cursor.as_deref())?;
    let adapter = p.adapter_type.as_deref().map(adapter_field).transpose()?;
    let mut data = rm::list_mappings(&state.pool, caller.company_id, p.station_id, adapter, after, limit + 1).await?;
    let next_cursor = page::next(&mut data, limit, |m| (m.created_at, m.id));
    Ok(Json(MappingPage { data, next_cursor }))
}

/// Create a station-CPMS mapping.
#[utoipa::path(post, path = "/mappings", tag = TAG, request_body = CreateMappingRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = MappingView, description = "Created"),
        (status = 202, description = "Created; the read model has not caught up yet (the body is the command's outcome)"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "The station (or a charge point) already has a live mapping"),
        (status = 422, body = crate::error::Problem, description = "Invalid fields (a charge point that is not a terminal of yours), or Idempotency-Key reused")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_mapping(
    State(state): State<AppState>,
    caller: Caller,
    command: JsonCommand<CreateMappingRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let JsonCommand { body, idempotency_key, fingerprint } = command;
    let ctx = context(&caller, idempotency_key.clone(), fingerprint.clone());
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let adapter_type = adapter_field(&body.adapter_type)?;
        let foreign_charge_points = foreign(&state, &caller, adapter_type, &body.charge_point_ids).await?;
        let id = Uuid::now_v7();
        let command = MappingCommand::Create(CreateMapping {
            mapping_id: id,
            company_id: CompanyId(caller.company_id),
            station_id: body.station_id,
            adapter_type,
            charge_point_ids: body.charge_point_ids,
            foreign_charge_points,
            now: crate::routes::now(&state),
        });
        let executed = cmd::change_mapping(&state.store, &ctx, id, command).await?;
        // A replay answers with the id of the mapping it created.
        let id =
            executed.outcome.get("id").and_then(|v| v.as_str()).and_then(|s| Uuid::parse_str(s).ok()).unwrap_or(id);
        answer(&state, &caller, id, StatusCode::CREATED, executed).await
    })
    .await
}

/// Get a station-CPMS mapping by id.
#[utoipa::path(get, path = "/mappings/{id}", tag = TAG,
    params(("id" = Uuid, Path, description = "Mapping id")),
    responses((status = 200, body = MappingView), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MappingView>, ApiError> {
    let id = mapping_id(&id)?;
    rm::get_mapping(&state.pool, caller.company_id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("mapping not found".into()))
}

/// Update a station-CPMS mapping (adapter type, charge points).
#[utoipa::path(patch, path = "/mappings/{id}", tag = TAG, request_body = UpdateMappingRequest,
    params(("id" = Uuid, Path, description = "Mapping id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = MappingView), (status = 202, description = "Updated; the read model has not caught up yet"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "A charge point belongs to another live mapping"),
        (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    command: JsonCommand<UpdateMappingRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = mapping_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = command;
    let ctx = context(&caller, idempotency_key.clone(), fingerprint.clone());
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let company = CompanyId(caller.company_id);
        let current = cmd::mapping(&state.store, id).await?;
        let current = current.live_for(company).ok_or_else(|| ApiError::NotFound("mapping not found".into()))?;
        let adapter_type = body.adapter_type.as_deref().map(adapter_field).transpose()?;
        let foreign_charge_points = match &body.charge_point_ids {
            Some(ids) => foreign(&state, &caller, adapter_type.unwrap_or(current.adapter_type), ids).await?,
            None => vec![],
        };
        let command = MappingCommand::Update(UpdateMapping {
            company_id: company,
            station_id: body.station_id,
            adapter_type,
            charge_point_ids: body.charge_point_ids,
            foreign_charge_points,
            now: crate::routes::now(&state),
        });
        let executed = cmd::change_mapping(&state.store, &ctx, id, command).await?;
        answer(&state, &caller, id, StatusCode::OK, executed).await
    })
    .await
}

/// Delete a station-CPMS mapping: a `cpms_mapping.deleted` event (the history stays); the station may be mapped again.
#[utoipa::path(delete, path = "/mappings/{id}", tag = TAG,
    params(("id" = Uuid, Path, description = "Mapping id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, description = "Deleted: `{id, stationId, adapterType, chargePointIds, deleted: true, version}`"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_mapping(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    command: BodylessCommand,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = mapping_id(&id)?;
    let BodylessCommand { idempotency_key, fingerprint } = command;
    let ctx = context(&caller, idempotency_key.clone(), fingerprint.clone());
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let command = MappingCommand::Delete(DeleteMapping {
            company_id: CompanyId(caller.company_id),
            now: crate::routes::now(&state),
        });
        let executed = cmd::change_mapping(&state.store, &ctx, id, command).await?;
        // Best effort: the answer does not depend on the read model.
        caught_up(&state, id, &executed).await?;
        Ok(Stored { status: StatusCode::OK, location: None, body: executed.outcome })
    })
    .await
}
