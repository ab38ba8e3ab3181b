//! A local fake of the Pagar.me V5 API: a real HTTP server that checks what it
//! receives (Basic auth with the secret key, Idempotency-Key on writes, JSON
//! shape, amounts in cents) and serves orders and charges the way the V5 docs
//! describe them. Card tokens choose the scenario: `tok_ok`, `tok_decline`,
//! `tok_timeout` (answers too late, order created), `tok_5xx` (500, no order).
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

pub const SECRET_KEY: &str = "sk_test_chargeledger";

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    fail_next: Vec<(String, String, u32)>,
    orders: HashMap<String, Value>,
    charges: HashMap<String, Value>,
    by_key: HashMap<String, String>,
    seen: Vec<Seen>,
    problems: Vec<String>,
    next: u64,
}

#[derive(Clone, Default)]
pub struct FakePagarme {
    inner: Arc<Mutex<Inner>>,
}

impl FakePagarme {
    pub async fn start() -> (Self, String) {
        let fake = FakePagarme::default();
        let app = Router::new()
            .route("/core/v5/orders", post(create_order).get(list_orders))
            .route("/core/v5/charges/{id}", get(get_charge).delete(cancel_charge))
            .route("/core/v5/charges/{id}/capture", post(capture_charge))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/core/v5", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, url)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn seen_at(&self, method: &str, path_part: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == method && s.path.contains(path_part)).collect()
    }

    /// Anything a request did wrong (auth, idempotency key, shape).
    pub fn problems(&self) -> Vec<String> {
        self.inner.lock().unwrap().problems.clone()
    }

    /// The payer paid a PIX charge.
    pub fn pay_pix(&self, charge_id: &str) {
        let mut inner = self.inner.lock().unwrap();
        let charge = inner.charges.get_mut(charge_id).unwrap();
        charge["status"] = json!("paid");
        charge["paid_amount"] = charge["amount"].clone();
        charge["last_transaction"]["status"] = json!("paid");
    }

    /// The next `times` requests of `method` to a path containing `part` answer 500 and do nothing.
    pub fn fail_next(&self, method: &str, part: &str, times: u32) {
        self.inner.lock().unwrap().fail_next.push((method.into(), part.into(), times));
    }

    /// Healthy again: no more injected failures.
    pub fn clear_failures(&self) {
        self.inner.lock().unwrap().fail_next.clear();
    }

    fn should_fail(&self, method: &str, path: &str) -> bool {
        let mut inner = self.inner.lock().unwrap();
        for rule in inner.fail_next.iter_mut() {
            if rule.0 == method && path.contains(&rule.1) && rule.2 > 0 {
                rule.2 -= 1;
                return true;
            }
        }
        false
    }

    pub fn charge(&self, id: &str) -> Value {
        self.inner.lock().unwrap().charges.get(id).cloned().unwrap_or_default()
    }
}

fn check(
    fake: &FakePagarme,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &Value,
    write: bool,
) -> Option<String> {
    use base64::Engine;
    let mut inner = fake.inner.lock().unwrap();
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SECRET_KEY}:")));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        inner.problems.push(format!("{method} {path}: wrong or missing Basic auth"));
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if write && key.is_none() {
        inner.problems.push(format!("{method} {path}: no Idempotency-Key"));
    }
    inner.seen.push(Seen {
        method: method.into(),
        path: path.into(),
        idempotency_key: key.clone(),
        body: body.clone(),
    });
    key
}

fn unauthorized(headers: &HeaderMap) -> bool {
    use base64::Engine;
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SECRET_KEY}:")));
    headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())
}

async fn create_order(
    State(fake): State<FakePagarme>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let key = check(&fake, &headers, "POST", "/orders", &body, true);
    if fake.should_fail("POST", "/orders") {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"message": "An error has occurred."}))).into_response();
    }
    if unauthorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Authorization has been denied for this request."})))
            .into_response();
    }
    let payment = body["payments"][0].clone();
    let amount = payment["amount"].as_i64().unwrap_or_default();
    let shape_ok = body["code"].is_string()
        && body["items"][0]["amount"].as_i64() == Some(amount)
        && body["customer"]["name"].is_string()
        && amount > 0;
    if !shape_ok {
        fake.inner.lock().unwrap().problems.push(format!("POST /orders: unexpected shape {body}"));
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "The request is invalid.", "errors": {"order": ["shape"]}})),
        )
            .into_response();
    }
    let method = payment["payment_method"].as_str().unwrap_or_default().to_owned();
    let token = payment["credit_card"]["card_token"].as_str().unwrap_or("tok_ok").to_owned();
    if method == "credit_card" && payment["credit_card"]["capture"] != json!(false) {
        fake.inner.lock().unwrap().problems.push("POST /orders: a pre-authorization must send capture=false".into());
    }
    if token == "tok_5xx" {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"message": "An error has occurred."}))).into_response();
    }
    let order = {
        let mut inner = fake.inner.lock().unwrap();
        if let Some(existing) = key.as_ref().and_then(|k| inner.by_key.get(k)).and_then(|id| inner.orders.get(id)) {
            existing.clone()
        } else {
            inner.next += 1;
            let n = inner.next;
            let (order_id, charge_id) = (format!("or_fake{n:012}"), format!("ch_fake{n:012}"));
            let (status, tx) = match (method.as_str(), token.as_str()) {
                ("pix", _) => (
                    "pending",
                    json!({"id": format!("tran_{n}"), "transaction_type": "pix", "status": "waiting_payment", "success": true,
                    "qr_code": format!("00020101021226820014br.gov.bcb.pix2560fake/{n}"), "qr_code_url": format!("https://fake.local/qr/{n}.png"),
                    "expires_at": (chrono::Utc::now() + chrono::Duration::seconds(payment["pix"]["expires_in"].as_i64().unwrap_or(1800))).to_rfc3339()}),
                ),
                (_, "tok_decline") => (
                    "failed",
                    json!({"id": format!("tran_{n}"), "status": "not_authorized", "success": false,
                    "acquirer_return_code": "51", "acquirer_message": "Transacao nao autorizada", "gateway_response": {"code": "200", "errors": []}}),
                ),
                _ => (
                    "pending",
                    json!({"id": format!("tran_{n}"), "status": "authorized_pending_capture", "success": true, "operation_type": "auth_only",
                    "acquirer_return_code": "00", "card": {"last_four_digits": "0010", "brand": "Visa", "first_six_digits": "400000"}}),
                ),
            };
            let charge = json!({"id": charge_id, "code": body["code"], "amount": amount, "status": status, "currency": "BRL",
                "payment_method": method, "order": {"id": order_id}, "last_transaction": tx});
            let order = json!({"id": order_id, "code": body["code"], "amount": amount, "currency": "BRL", "closed": true,
                "status": if status == "failed" { "failed" } else { "pending" }, "charges": [charge.clone()]});
            inner.orders.insert(order_id.clone(), order.clone());
            inner.charges.insert(charge_id, charge);
            if let Some(k) = key {
                inner.by_key.insert(k, order_id);
            }
            order
        }
    };
    if token == "tok_timeout" {
        tokio::time::sleep(Duration::from_secs(3)).await; // longer than the client waits
    }
    (StatusCode::OK, Json(order)).into_response()
}

async fn list_orders(
    State(fake): State<FakePagarme>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    check(&fake, &headers, "GET", "/orders", &json!(q), false);
    let inner = fake.inner.lock().unwrap();
    let code = q.get("code").cloned().unwrap_or_default();
    let data: Vec<Value> = inner
        .orders
        .values()
        .filter(|o| o["code"] == json!(code))
        .map(|o| {
            let mut o = o.clone();
            let id = o["charges"][0]["id"].as_str().unwrap_or_default().to_owned();
            o["charges"][0] = inner.charges.get(&id).cloned().unwrap_or_default();
            o
        })
        .collect();
    Json(json!({"data": data, "paging": {"total": data.len()}}))
}

async fn get_charge(State(fake): State<FakePagarme>, headers: HeaderMap, Path(id): Path<String>) -> impl IntoResponse {
    check(&fake, &headers, "GET", &format!("/charges/{id}"), &Value::Null, false);
    match fake.inner.lock().unwrap().charges.get(&id) {
        Some(c) => (StatusCode::OK, Json(c.clone())).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Charge not found."}))).into_response(),
    }
}

async fn capture_charge(
    State(fake): State<FakePagarme>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    check(&fake, &headers, "POST", &format!("/charges/{id}/capture"), &body, true);
    if fake.should_fail("POST", &format!("/charges/{id}/capture")) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"message": "An error has occurred."}))).into_response();
    }
    let mut inner = fake.inner.lock().unwrap();
    let Some(charge) = inner.charges.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Charge not found."}))).into_response();
    };
    let amount = body["amount"].as_i64().unwrap_or_default();
    if charge["last_transaction"]["status"] != "authorized_pending_capture"
        || amount <= 0
        || Some(amount) > charge["amount"].as_i64()
    {
        return (StatusCode::PRECONDITION_FAILED, Json(json!({"message": "Charge cannot be captured."})))
            .into_response();
    }
    charge["status"] = json!("paid");
    charge["paid_amount"] = json!(amount);
    charge["canceled_amount"] = json!(0);
    charge["last_transaction"]["status"] =
        json!(if Some(amount) == charge["amount"].as_i64() { "captured" } else { "partial_capture" });
    (StatusCode::OK, Json(charge.clone())).into_response()
}

async fn cancel_charge(
    State(fake): State<FakePagarme>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Value>>,
) -> impl IntoResponse {
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    check(&fake, &headers, "DELETE", &format!("/charges/{id}"), &body, true);
    if fake.should_fail("DELETE", &format!("/charges/{id}")) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"message": "An error has occurred."}))).into_response();
    }
    let mut inner = fake.inner.lock().unwrap();
    let Some(charge) = inner.charges.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Charge not found."}))).into_response();
    };
    let paid = charge["paid_amount"].as_i64().unwrap_or_default();
    let canceled = charge["canceled_amount"].as_i64().unwrap_or_default();
    match charge["status"].as_str() {
        Some("paid") => {
            let left = paid - canceled.max(0);
            let amount = body["amount"].as_i64().unwrap_or(left);
            if amount <= 0 || amount > left {
                return (
                    StatusCode::PRECONDITION_FAILED,
                    Json(json!({"message": "Amount above what can be refunded."})),
                )
                    .into_response();
            }
            charge["canceled_amount"] = json!(canceled + amount);
            if canceled + amount >= paid {
                charge["status"] = json!("canceled");
            }
        }
        Some("pending") => {
            charge["status"] = json!("canceled");
            charge["canceled_amount"] = charge["amount"].clone();
            charge["last_transaction"]["status"] = json!("voided");
        }
        _ => {
            return (StatusCode::PRECONDITION_FAILED, Json(json!({"message": "Charge cannot be canceled."})))
                .into_response()
        }
    }
    (StatusCode::OK, Json(charge.clone())).into_response()
}
