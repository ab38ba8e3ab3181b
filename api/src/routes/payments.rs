//! Payment intents (seed 002: create → authorize → capture / void), their
//! list and history, refunds, wallets and the Pagar.me webhook.

use axum::{
    body::Bytes,
    extract::{rejection::QueryRejection, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    Json,
};
use base64::{engine::general_purpose, Engine};
use chrono::{DateTime, SubsecRound, Utc};
use commands::payments::{Actor, AuthorizeInput, NewIntent};
use domain::{
    payment::{Customer, IntentState, IntentStatus, PaymentMethod, WebhookReceived},
    CompanyId, FieldError, Money,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{idempotent, Stored};
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

/// The payer.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    /// Your customer id (required for WALLET: whose balance).
    pub customer_id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// E-mail (receipts).
    pub email: Option<String>,
    /// CPF (check digits verified).
    pub cpf: Option<String>,
}

/// Create a payment intent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateIntentRequest {
    /// Cents (5000 = R$ 50.00).
    #[schema(example = 5000)]
    pub amount: i64,
    /// CREDIT_CARD, GOOGLE_PAY, APPLE_PAY, PIX, WALLET or VIP.
    #[schema(value_type = String, example = "CREDIT_CARD")]
    pub method: PaymentMethod,
    /// The payer.
    #[serde(default)]
    pub customer: CustomerInput,
    /// Free text.
    pub description: Option<String>,
}

/// Authorize: the card token or wallet payload.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// CREDIT_CARD: the card token from Pagar.me's tokenization.
    pub card_token: Option<String>,
    /// GOOGLE_PAY / APPLE_PAY: the encrypted payload, passed to Pagar.me as is.
    #[schema(value_type = Option<Object>)]
    pub network_token: Option<Value>,
}

/// Capture or refund an amount (all by default).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmountRequest {
    /// Cents; at most `amountCapturable` (capture) or what is left to refund.
    pub amount: Option<i64>,
}

/// Top up a wallet.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUpRequest {
    /// Cents.
    pub amount: i64,
    /// CREDIT_CARD or PIX.
    #[schema(value_type = String, example = "PIX")]
    pub method: PaymentMethod,
    /// CREDIT_CARD: card token.
    pub card_token: Option<String>,
}

/// A PIX code to show the payer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PixView {
    /// Copy-and-paste code.
    pub qr_code: String,
    /// QR image URL.
    pub qr_code_url: Option<String>,
    /// Deadline.
    pub expires_at: DateTime<Utc>,
}

/// Why the last operation failed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// card_declined, insufficient_funds, gateway_rejected, gateway_error, …
    pub code: String,
    /// For people.
    pub reason: String,
    /// Acquirer return code.
    pub decline_code: Option<String>,
}

/// A payment intent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentView {
    /// Id.
    pub id: Uuid,
    /// requires_authorization, processing, requires_capture, succeeded, canceled, failed, expired.
    pub status: String,
    /// Cents.
    pub amount: i64,
    /// Cents that can still be captured.
    pub amount_capturable: i64,
    /// Cents captured.
    pub amount_captured: i64,
    /// Cents released without capture.
    pub amount_released: i64,
    /// Cents refunded.
    pub amount_refunded: i64,
    /// BRL.
    pub currency: String,
    /// Method.
    pub method: String,
    /// The payer.
    #[schema(value_type = Object)]
    pub customer: Value,
    /// Description.
    pub description: Option<String>,
    /// Gateway order.
    pub order_id: Option<String>,
    /// Gateway charge.
    pub charge_id: Option<String>,
    /// PIX code while it waits for payment.
    pub pix: Option<PixView>,
    /// VIP.
    pub sponsored: bool,
    /// Last failure.
    pub last_error: Option<LastError>,
    /// Wallet topped up by this intent.
    pub top_up_wallet: Option<String>,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
}

fn c(m: Money) -> i64 {
    m.to_cents().unwrap_or_default()
}

fn view(id: Uuid, s: &IntentState) -> IntentView {
    let created = s.created.as_ref();
    IntentView {
        id,
        status: s.status().as_str().into(),
        amount: created.map_or(0, |c| c.amount),
        amount_capturable: c(s.capturable),
        amount_captured: c(s.captured),
        amount_released: c(s.released),
        amount_refunded: c(s.refunded),
        currency: "BRL".into(),
        method: created.map_or("", |c| c.method.as_str()).into(),
        customer: created.map(|c| json!(c.customer)).unwrap_or_default(),
        description: created.and_then(|c| c.description.clone()),
        order_id: s.order_id.clone(),
        charge_id: s.charge_id.clone(),
        pix: s.pix.as_ref().filter(|_| s.status() == IntentStatus::Processing).map(|p| PixView {
            qr_code: p.qr_code.clone(),
            qr_code_url: p.qr_code_url.clone(),
            expires_at: p.expires_at,
        }),
        sponsored: s.sponsored,
        last_error: s.failure.as_ref().map(|f| LastError {
            code: f.code.clone(),
            reason: f.reason.clone(),
            decline_code: f.decline_code.clone(),
        }),
        top_up_wallet: created.and_then(|c| c.top_up_wallet.clone()),
        created_at: created.map(|c| c.created_at),
    }
}

fn actor(caller: &Caller) -> Actor {
    Actor { company: CompanyId(caller.company_id), actor: caller.actor.clone(), correlation: Uuid::now_v7() }
}

/// The customer an intent belongs to.
fn owner(intent: &IntentState) -> Option<&str> {
    intent.created.as_ref().and_then(|c| c.customer.customer_id.as_deref())
}

/// A driver may not make or authorize sponsored payments.
fn no_vip(caller: &Caller, method: Option<PaymentMethod>) -> Result<(), ApiError> {
    match (caller.owner(), method) {
        (Some(_), Some(PaymentMethod::Vip)) => {
            Err(ApiError::Forbidden("VIP (sponsored) payments need an operator".into()))
        }
        _ => Ok(()),
    }
}

fn intent_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("payment intent not found".into()))
}

/// The answer to an operation: 200 with the intent, 202 while its outcome is
/// unknown, 402 with the intent when the payment was declined or failed.
fn answer(id: Uuid, state: &IntentState, created: bool) -> Result<Stored, ApiError> {
    let body = view(id, state);
    if state.status() == IntentStatus::Failed {
        let mut extensions = serde_json::Map::new();
        extensions.insert("paymentIntent".into(), json!(body));
        let detail =
            body.last_error.as_ref().map_or("the payment failed".to_owned(), |e| format!("{}: {}", e.code, e.reason));
        return Err(ApiError::PaymentDeclined { detail, extensions });
    }
    let status = if created {
        StatusCode::CREATED
    } else if state.status() == IntentStatus::Processing && state.pix.is_none() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(Stored { status, location: Some(format!("/v1/payment-intents/{id}")), body: json!(body) })
}

fn amount(cents: Option<i64>) -> Result<Option<Money>, ApiError> {
    match cents {
        Some(n) if n <= 0 => {
            Err(ApiError::Validation(vec![FieldError::new("amount", "must be a positive number of cents")]))
        }
        other => Ok(other.map(Money::from_cents)),
    }
}

/// Create a new payment intent.
#[utoipa::path(post, path = "/v1/payment-intents", tag = "Payments", request_body = CreateIntentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = IntentView), (status = 401, body = crate::error::Problem), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    cmd: JsonCommand<CreateIntentRequest>,
) -> Result<Response, ApiError> {
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    no_vip(&caller, Some(body.method))?;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let customer = Customer {
            // A driver pays for itself, whatever the body says.
            customer_id: caller.owner().map(str::to_owned).or(body.customer.customer_id),
            name: body.customer.name,
            email: body.customer.email,
            cpf: body.customer.cpf,
        };
        let new = NewIntent {
            amount: body.amount,
            method: body.method,
            customer,
            description: body.description,
            top_up_wallet: None,
        };
        let (id, intent) = state.payments.create(&actor(&caller), new).await?;
        answer(id, &intent, true)
    })
    .await
}

/// Get payment intent by ID.
#[utoipa::path(get, path = "/v1/payment-intents/{id}", tag = "Payments", params(("id" = Uuid, Path, description = "Intent id")),
    responses((status = 200, body = IntentView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IntentView>, ApiError> {
    let id = intent_id(&id)?;
    let intent = state.payments.get(CompanyId(caller.company_id), id).await?;
    caller.must_own(owner(&intent), "payment intent")?;
    Ok(Json(view(id, &intent)))
}

macro_rules! operation {
    ($name:ident, $path:literal, $doc:literal, $body:ty, |$s:ident, $c:ident, $a:ident, $id:ident, $b:ident| $call:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "Payments", request_body = $body,
            params(("id" = Uuid, Path, description = "Intent id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
            responses((status = 200, body = IntentView), (status = 202, body = IntentView, description = "Outcome unknown: processing, reconciled later"),
                (status = 402, body = crate::error::Problem, description = "Declined or failed; the body carries paymentIntent"),
                (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem, description = "Not in a state that allows it, or a duplicate in flight"),
                (status = 422, body = crate::error::Problem)),
            security(("bearer" = []), ("apiKey" = [])))]
        pub async fn $name(State($s): State<AppState>, caller: Caller, Path(id): Path<String>, cmd: JsonCommand<$body>) -> Result<Response, ApiError> {
            let $id = intent_id(&id)?;
            let JsonCommand { body: $b, idempotency_key, fingerprint } = cmd;
            let $a = actor(&caller);
            let $c = &caller;
            idempotent(&$s, $c, idempotency_key.as_deref(), &fingerprint, async {
                let intent = $call?;
                answer($id, &intent, false)
            })
            .await
        }
    };
}

operation!(
    authorize,
    "/v1/payment-intents/{id}/authorize",
    "Authorize a payment intent (card pre-authorization, PIX code, wallet hold, VIP).",
    AuthorizeRequest,
    |state, caller, a, id, b| async {
        if caller.owner().is_some() {
            let intent = state.payments.get(a.company, id).await?;
            caller.must_own(owner(&intent), "payment intent")?;
            no_vip(caller, intent.created.as_ref().map(|c| c.method))?;
        }
        let input = AuthorizeInput { card_token: b.card_token, network_token: b.network_token };
        state.payments.authorize(&a, id, input).await.map_err(ApiError::from)
    }
    .await
);
operation!(
    capture,
    "/v1/payment-intents/{id}/capture",
    "Capture an authorised payment (optionally part of it; the rest is released).",
    AmountRequest,
    |state, _caller, a, id, b| async {
        state.payments.capture(&a, id, amount(b.amount)?).await.map_err(ApiError::from)
    }
    .await
);
operation!(
    void,
    "/v1/payment-intents/{id}/void",
    "Void an authorised payment (or a PIX code not yet paid).",
    AmountRequest,
    |state, _caller, a, id, b| async {
        if b.amount.is_some() {
            return Err(ApiError::Validation(vec![FieldError::new("amount", "a void releases everything")]));
        }
        state.payments.void(&a, id).await.map_err(ApiError::from)
    }
    .await
);
operation!(
    refund,
    "/v1/payment-intents/{id}/refund",
    "Refund captured money (optionally part of it).",
    AmountRequest,
    |state, _caller, a, id, b| async { state.payments.refund(&a, id, amount(b.amount)?).await.map_err(ApiError::from) }
        .await
);

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Only this status.
    pub status: Option<String>,
    /// Only this customer.
    pub customer_id: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of intents.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentPage {
    /// Newest first.
    pub data: Vec<projections::payments::IntentSummary>,
    /// For the next page.
    pub next_cursor: Option<String>,
}

/// List payment intents (filters: status, customer; cursor pagination).
#[utoipa::path(get, path = "/v1/payment-intents", tag = "Payments", params(ListParams),
    responses((status = 200, body = IntentPage), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<IntentPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::Validation(vec![FieldError::new("query", e.body_text())]))?;
    let limit = super::page::limit(p.limit)?;
    let after = super::page::after(p.cursor.as_deref())?;
    // A driver lists its own intents only; asking for another customer's finds none.
    let customer = match (caller.owner(), p.customer_id.as_deref()) {
        (Some(me), Some(asked)) if asked != me => return Ok(Json(IntentPage { data: vec![], next_cursor: None })),
        (Some(me), _) => Some(me),
        (None, asked) => asked,
    };
    let mut data =
        projections::payments::list(&state.pool, caller.company_id, p.status.as_deref(), customer, after, limit + 1)
            .await?;
    let next_cursor = super::page::next(&mut data, limit, |l| (l.created_at, l.id));
    Ok(Json(IntentPage { data, next_cursor }))
}

/// One event of an intent's history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// Global position.
    pub position: i64,
    /// Version in the intent's stream.
    pub version: i64,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Schema version.
    pub schema_version: i32,
    /// Payload.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Who and why.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Hex SHA-256 chained to the previous event.
    pub hash: String,
}

/// The full history of a payment intent, for auditors.
#[utoipa::path(get, path = "/v1/payment-intents/{id}/events", tag = "Payments", params(("id" = Uuid, Path, description = "Intent id")),
    responses((status = 200, body = Vec<HistoryEvent>), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEvent>>, ApiError> {
    let id = intent_id(&id)?;
    if caller.owner().is_some() {
        caller.must_own(owner(&state.payments.get(CompanyId(caller.company_id), id).await?), "payment intent")?;
    }
    let history = state.payments.history(CompanyId(caller.company_id), id).await?;
    Ok(Json(history.into_iter().map(history_event).collect()))
}

/// An event as the history endpoints show it.
pub fn history_event(e: commands::RecordedEvent) -> HistoryEvent {
    HistoryEvent {
        position: e.position,
        version: e.stream_version,
        event_type: e.event_type,
        schema_version: e.schema_version,
        data: e.payload,
        metadata: e.metadata,
        recorded_at: e.recorded_at,
        hash: hex::encode(e.hash),
    }
}

/// A wallet balance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    /// Customer.
    pub customer_id: String,
    /// Cents, held money included.
    pub balance: i64,
    /// Cents held by authorized intents.
    pub held: i64,
    /// Cents that can be held.
    pub available: i64,
}

fn customer_id(raw: &str) -> Result<String, ApiError> {
    if raw.is_empty() || raw.len() > 64 || raw.chars().any(|c| c.is_control()) {
        return Err(ApiError::NotFound("wallet not found".into()));
    }
    Ok(raw.to_owned())
}

/// A customer's digital balance.
#[utoipa::path(get, path = "/v1/wallets/{customerId}", tag = "Payments", params(("customerId" = String, Path, description = "Customer")),
    responses((status = 200, body = WalletView)), security(("bearer" = []), ("apiKey" = [])))]
pub async fn wallet(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    let customer = customer_id(&customer)?;
    caller.must_own(Some(&customer), "wallet")?;
    let (w, _, _) = state.payments.wallet(CompanyId(caller.company_id), &customer).await?;
    let held = w.holds.values().sum();
    Ok(Json(WalletView { customer_id: customer, balance: w.balance, held, available: w.available() }))
}

/// Top up a wallet by card (collected at once) or PIX (collected when paid).
#[utoipa::path(post, path = "/v1/wallets/{customerId}/top-ups", tag = "Payments", request_body = TopUpRequest,
    params(("customerId" = String, Path, description = "Customer"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = IntentView), (status = 402, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn top_up(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer): Path<String>,
    cmd: JsonCommand<TopUpRequest>,
) -> Result<Response, ApiError> {
    let customer = customer_id(&customer)?;
    caller.must_own(Some(&customer), "wallet")?;
    let JsonCommand { body, idempotency_key, fingerprint } = cmd;
    no_vip(&caller, Some(body.method))?;
    idempotent(&state, &caller, idempotency_key.as_deref(), &fingerprint, async {
        let input = AuthorizeInput { card_token: body.card_token, network_token: None };
        let (id, intent) = state.payments.top_up(&actor(&caller), &customer, body.amount, body.method, input).await?;
        let mut stored = answer(id, &intent, false)?;
        stored.status = StatusCode::CREATED;
        Ok(stored)
    })
    .await
}

/// Checks a webhook's credentials: Basic auth on the URL and/or an RS256
/// signature of the raw body; with neither configured, webhooks are refused.
fn authentic(state: &AppState, headers: &HeaderMap, body: &[u8]) -> bool {
    let config = &state.config.payments;
    let mut checked = false;
    if let Some((user, password)) = &config.webhook_basic {
        let expected =
            format!("Basic {}", general_purpose::STANDARD.encode(format!("{user}:{}", password.expose_secret())));
        let given = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        // Compare digests: equal-length, and no early exit on the secret's bytes.
        let key = state.config.jwt_secret.expose_secret().as_bytes();
        let (a, b) =
            (crate::extract::hmac_sha256(key, given.as_bytes()), crate::extract::hmac_sha256(key, expected.as_bytes()));
        if a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) != 0 {
            return false;
        }
        checked = true;
    }
    if let Some(pem) = &config.webhook_public_keys_pem {
        let Some(signature) = headers.get("x-webhook-asymmetric-signature").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let raw = signature.trim().trim_start_matches("sha256=");
        let Some(bytes) =
            general_purpose::STANDARD.decode(raw).ok().or_else(|| general_purpose::URL_SAFE_NO_PAD.decode(raw).ok())
        else {
            return false;
        };
        let signature = general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let keys = pem.split_inclusive("-----END PUBLIC KEY-----").filter(|k| k.contains("BEGIN PUBLIC KEY"));
        let ok = keys.filter_map(|k| jsonwebtoken::DecodingKey::from_rsa_pem(k.trim().as_bytes()).ok()).any(|key| {
            jsonwebtoken::crypto::verify(&signature, body, &key, jsonwebtoken::Algorithm::RS256).unwrap_or(false)
        });
        if !ok {
            return false;
        }
        checked = true;
    }
    checked
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
    if !authentic(&state, &headers, &body) {
        return Err(ApiError::Unauthorized(
            "the webhook's credentials or signature do not match the configuration".into(),
        ));
    }
    let hook: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let hook_id = hook
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::BadRequest("a webhook has an id".into()))?
        .to_owned();
    let event_type =
        hook.get("type").or_else(|| hook.get("event")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let data = hook.get("data").cloned().unwrap_or_default();
    // charge.* carry the charge; order.* carry the order with its charges.
    let charge_id = if event_type.starts_with("order.") {
        data.pointer("/charges/0/id").and_then(Value::as_str)
    } else {
        data.get("id").and_then(Value::as_str)
    }
    .map(str::to_owned);
    let Some(charge) = charge_id else {
        return Ok(Json(json!({"received": true, "matched": false})));
    };
    let found = state.payments.intent_of_charge(&charge).await.map_err(ApiError::internal)?;
    let Some((id, company)) = found else {
        tracing::warn!(%hook_id, %charge, "webhook for a charge we do not know");
        return Ok(Json(json!({"received": true, "matched": false})));
    };
    let actor = Actor { company, actor: "gateway:pagarme".into(), correlation: Uuid::now_v7() };
    let webhook = WebhookReceived {
        hook_id,
        event_type,
        charge_id: Some(charge),
        body: gateways::payments::redact(&hook),
        at: Utc::now().trunc_subsecs(6),
    };
    let intent = state.payments.webhook(&actor, id, webhook).await?;
    Ok(Json(json!({"received": true, "matched": true, "paymentIntent": id, "status": intent.status().as_str()})))
}
