//! Webhooks (seed 002, seven endpoints, plus secret rotation): subscriptions
//! and their delivery log, company-scoped (ADR 0012).

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::StatusCode,
    response::Response,
    Json,
};
use commands::webhooks::WebhookActor;
use domain::{
    webhook::{filter_valid, SubscriptionStatus},
    CompanyId, FieldError,
};
use projections::webhooks::SubscriptionView;
use serde_json::json;
use uuid::Uuid;

mod dto;

pub use self::dto::*;
use super::{idempotent, page, Stored};
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

fn actor(caller: &Caller) -> WebhookActor {
    WebhookActor { company: CompanyId(caller.company_id), actor: caller.actor.clone(), correlation: Uuid::now_v7() }
}

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("webhook not found".into()))
}

/// Checks a target URL and filters; every problem named.
fn validate(state: &AppState, url: Option<&str>, event_types: Option<&[String]>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Some(url) = url {
        if let Some(reason) = state.webhook_sender.refuse(url) {
            errors.push(FieldError::new("url", reason));
        }
    }
    if let Some(filters) = event_types {
        let known = domain::schema::declared_types();
        if filters.is_empty() {
            errors.push(FieldError::new("eventTypes", "must list at least one event type"));
        }
        for (i, f) in filters.iter().enumerate() {
            if !filter_valid(f, &known) {
                errors.push(FieldError::new(
                    format!("eventTypes[{i}]"),
                    format!("{f:?} matches no event type (use *, a category such as charge_session.*, or a type from docs/events.md)"),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The read model's view of a subscription once it has caught up with
/// `position`; if it has not within the consistency wait, the view is built
/// from the subscription's own stream (the command is committed either way,
/// so the answer must not invite a retry that would act twice).
async fn view_after(state: &AppState, company: Uuid, id: Uuid, position: i64) -> Result<SubscriptionView, ApiError> {
    let caught_up = projections::runtime::wait_for(
        &state.pool,
        projections::webhooks::NAME,
        position,
        state.config.consistency_wait,
    )
    .await;
    if caught_up {
        if let Some(view) = projections::webhooks::subscription(&state.pool, company, id).await? {
            return Ok(view);
        }
    }
    let s = state.webhooks.get(CompanyId(company), id).await?;
    let now = state.webhooks.clock().now();
    Ok(SubscriptionView {
        id,
        url: s.url,
        event_types: s.event_types,
        description: s.description,
        status: match s.status {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Disabled => "disabled",
            SubscriptionStatus::Deactivated | SubscriptionStatus::None => "deactivated",
        }
        .into(),
        disabled_reason: s.disabled_reason,
        previous_secret_expires_at: s.previous_secret.map(|(_, until)| until),
        created_at: now,
        updated_at: now,
    })
}

/// Register a webhook subscription.
#[utoipa::path(
    operation_id = "registerWebhook",post, path = "/api/v1/webhooks", tag = "Webhooks", request_body = RegisterWebhookDto,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = WebhookWithSecret), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    cmd: JsonCommand<RegisterWebhookDto>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        validate(&state, Some(&body.url), Some(&body.event_types))?;
        let a = actor(&caller);
        let (id, secret, position) = state.webhooks.register(&a, body.url, body.event_types, body.description).await?;
        let subscription = view_after(&state, caller.company_id, id, position).await?;
        Ok(Stored {
            status: StatusCode::CREATED,
            location: Some(format!("/api/v1/webhooks/{id}")),
            body: json!(WebhookWithSecret { subscription, secret: Some(secret), secret_withheld: false }),
        })
    })
    .await
}

/// List webhook subscriptions.
#[utoipa::path(
    operation_id = "listWebhooks",get, path = "/api/v1/webhooks", tag = "Webhooks", params(ListParams),
    responses((status = 200, body = WebhookPage), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<WebhookPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    page::one_of("status", p.status.as_deref(), STATUSES)?;
    let limit = page::limit(p.limit)?;
    let after = page::after(p.cursor.as_deref())?;
    let mut data =
        projections::webhooks::subscriptions(&state.pool, caller.company_id, p.status.as_deref(), after, limit + 1)
            .await?;
    let next_cursor = page::next(&mut data, limit, |s| (s.created_at, s.id));
    Ok(Json(WebhookPage { data, next_cursor }))
}

/// Get subscription details.
#[utoipa::path(
    operation_id = "getWebhook",get, path = "/api/v1/webhooks/{id}", tag = "Webhooks", params(("id" = Uuid, Path, description = "Subscription")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let id = webhook_id(&id)?;
    projections::webhooks::subscription(&state.pool, caller.company_id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("webhook not found".into()))
}

/// Update subscription.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "Webhooks", request_body = UpdateWebhookDto,
    params(("id" = Uuid, Path, description = "Subscription"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = SubscriptionView), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<UpdateWebhookDto>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = webhook_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        validate(&state, body.url.as_deref(), body.event_types.as_deref())?;
        let position = state
            .webhooks
            .update(&actor(&caller), id, body.url, body.event_types, body.description, body.active)
            .await?;
        let view = view_after(&state, caller.company_id, id, position).await?;
        Ok(Stored { status: StatusCode::OK, location: None, body: json!(view) })
    })
    .await
}

/// Deactivate subscription (its history stays).
///
/// A soft delete: nothing more is delivered, and the subscription (`status:
/// deactivated`) and its delivery log stay readable under the same id, for
/// audits. A deactivated subscription cannot be updated or reactivated.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "Webhooks", params(("id" = Uuid, Path, description = "Subscription")),
    responses((status = 200, body = SubscriptionView, description = "Deactivated; still readable with `status: deactivated`"),
        (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    caller.require_operator()?;
    let id = webhook_id(&id)?;
    let position = state.webhooks.deactivate(&actor(&caller), id).await?;
    Ok(Json(view_after(&state, caller.company_id, id, position).await?))
}

/// List deliveries for a subscription: every attempt.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "Webhooks",
    params(("id" = Uuid, Path, description = "Subscription"), PageParams),
    responses((status = 200, body = DeliveryPage), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let id = webhook_id(&id)?;
    let Query(p) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    if projections::webhooks::subscription(&state.pool, caller.company_id, id).await?.is_none() {
        return Err(ApiError::NotFound("webhook not found".into()));
    }
    let limit = page::limit(p.limit)?;
    let after = page::after(p.cursor.as_deref())?;
    let mut data = projections::webhooks::attempts(&state.pool, caller.company_id, id, after, limit + 1).await?;
    let next_cursor = page::next(&mut data, limit, |a| (a.at, a.delivery_id));
    Ok(Json(DeliveryPage { data, next_cursor }))
}

/// Send test webhook event (signed, now) and answer the delivery result.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "Webhooks", params(("id" = Uuid, Path, description = "Subscription")),
    responses((status = 200, body = TestDelivery), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestDelivery>, ApiError> {
    caller.require_operator()?;
    let id = webhook_id(&id)?;
    let r = state.webhooks.send_test(&actor(&caller), id).await?;
    Ok(Json(TestDelivery {
        delivery_id: r.delivery_id,
        message_id: r.message_id,
        succeeded: r.succeeded,
        status_code: r.attempt.status_code,
        duration_ms: r.attempt.duration_ms,
        response_excerpt: r.attempt.response_excerpt,
        // Only the generic reason: never connect details of the target.
        error: r.attempt.error.as_deref().map(|e| gateways::webhooks::public_error(e).to_owned()),
        at: r.attempt.at,
    }))
}

/// Rotate the signing secret; the old one keeps signing during the grace period.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "Webhooks", request_body = RotateSecretDto,
    params(("id" = Uuid, Path, description = "Subscription"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    cmd: JsonCommand<RotateSecretDto>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let id = webhook_id(&id)?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let grace = body.grace_seconds.unwrap_or(86_400);
        if grace > 604_800 {
            return Err(ApiError::Validation(vec![FieldError::new("graceSeconds", "must be at most 604800 (7 days)")]));
        }
        let (secret, _, position) =
            state.webhooks.rotate_secret(&actor(&caller), id, std::time::Duration::from_secs(grace)).await?;
        let subscription = view_after(&state, caller.company_id, id, position).await?;
        Ok(Stored {
            status: StatusCode::OK,
            location: None,
            body: json!(WebhookWithSecret { subscription, secret: Some(secret), secret_withheld: false }),
        })
    })
    .await
}
