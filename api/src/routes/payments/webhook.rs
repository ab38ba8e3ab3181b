//! The Pagar.me webhook route: verify and read the hook with the gateway's own
//! [`gateways::payments::pagarme::webhook`], hand it to the payment service, answer.

use axum::{body::Bytes, extract::State, http::HeaderMap, Json};
use commands::payments::Actor;
use gateways::payments::pagarme::webhook::{self, WebhookError, WebhookVerifier};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

/// 401 when the sender was not shown to be Pagar.me (without saying which check
/// failed), 400 when an authentic hook's body is unusable.
fn refused(error: WebhookError) -> ApiError {
    if error.is_unauthenticated() {
        tracing::debug!(%error, "refused a Pagar.me webhook");
        ApiError::Unauthorized("the webhook's credentials or signature do not match the configuration".into())
    } else {
        ApiError::BadRequest(error.to_string())
    }
}

/// Pagar.me webhooks (`charge.paid`, `charge.refunded`, `charge.payment_failed`, …): authenticated,
/// recorded once per hook id on the intent's stream, then acted on after re-fetching the charge.
#[utoipa::path(post, path = "/v1/gateways/pagarme/webhooks", tag = "Payments", request_body(content = Object, description = "Pagar.me webhook"),
    responses((status = 200, description = "Received"), (status = 401, body = crate::error::Problem), (status = 400, body = crate::error::Problem)))]
pub async fn pagarme_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let config = &state.config.payments;
    let basic = config.webhook_basic.as_ref().map(|(user, password)| (user.as_str(), password.expose_secret()));
    let verifier = WebhookVerifier::new(basic, config.webhook_public_keys_pem.as_deref());
    verifier.verify(&headers, &body).map_err(refused)?;
    let hook = webhook::parse(&body).map_err(refused)?;
    let unmatched = || Ok(Json(json!({"received": true, "matched": false})));
    let Some(charge) = hook.charge_id.as_deref() else { return unmatched() };
    let found = state.payments.intent_of_charge(charge).await.map_err(ApiError::internal)?;
    let Some((id, company)) = found else {
        tracing::warn!(hook_id = %hook.hook_id, %charge, "webhook for a charge we do not know");
        return unmatched();
    };
    let actor = Actor { company, actor: "gateway:pagarme".into(), correlation: Uuid::now_v7() };
    let intent = state.payments.webhook(&actor, id, hook.into_received(crate::routes::now(&state))).await?;
    Ok(Json(json!({"received": true, "matched": true, "paymentIntent": id, "status": intent.status().as_str()})))
}
