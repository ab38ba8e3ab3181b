//! Payment intents (seed 002: create → authorize → capture / void), their
//! list and history, refunds, wallets and the Pagar.me webhook.
//!
//! Handlers only: bodies and rendering are in `dto`, the webhook in
//! `webhook`; decisions belong to [`commands::payments::Payments`].

mod dto;
mod webhook;

use axum::{
    extract::{rejection::QueryRejection, Path, Query, State},
    http::StatusCode,
    response::Response,
    Json,
};
use commands::payments::{Actor, AuthorizeInput, NewIntent};
use domain::{
    payment::{Customer, IntentState, PaymentMethod},
    CompanyId, FieldError, Money,
};
use dto::{answer, view};
pub use dto::{
    history_event, AmountRequest, AuthorizeRequest, CreateIntentRequest, CustomerInput, HistoryEvent, IntentPage,
    IntentView, LastError, ListParams, PixView, TopUpRequest, VoidRequest, WalletView,
};
use uuid::Uuid;
pub use webhook::{__path_pagarme_webhook, pagarme_webhook};

use super::idempotent;
use crate::{auth::Caller, error::ApiError, extract::JsonCommand, state::AppState};

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
#[utoipa::path(
    operation_id = "getPaymentIntent",get, path = "/v1/payment-intents/{id}", tag = "Payments", params(("id" = Uuid, Path, description = "Intent id")),
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
    VoidRequest,
    |state, _caller, a, id, _b| async { state.payments.void(&a, id).await.map_err(ApiError::from) }.await
);
operation!(
    refund,
    "/v1/payment-intents/{id}/refund",
    "Refund captured money (optionally part of it).",
    AmountRequest,
    |state, _caller, a, id, b| async { state.payments.refund(&a, id, amount(b.amount)?).await.map_err(ApiError::from) }
        .await
);

/// List payment intents (filters: status, customer; cursor pagination).
#[utoipa::path(
    operation_id = "listPaymentIntents",get, path = "/v1/payment-intents", tag = "Payments", params(ListParams),
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
    super::page::one_of("status", p.status.as_deref(), domain::payment::IntentStatus::ALL.iter().map(|s| s.as_str()))?;
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

/// The full history of a payment intent, for auditors.
#[utoipa::path(
    operation_id = "paymentIntentEvents",get, path = "/v1/payment-intents/{id}/events", tag = "Payments", params(("id" = Uuid, Path, description = "Intent id")),
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

fn customer_id(raw: &str) -> Result<String, ApiError> {
    if raw.is_empty() || raw.chars().count() > 64 || raw.chars().any(|c| c.is_control()) {
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
