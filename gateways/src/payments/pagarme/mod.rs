//! The Pagar.me V5 adapter: `/core/v5`, HTTP Basic with the secret key,
//! `Idempotency-Key` on every write, orders with `capture: false` for
//! pre-authorization, partial capture, cancel/refund by DELETE, PIX; wire types
//! in [`transformers`], webhook verification and parsing in [`webhook`].

pub mod transformers;
pub mod webhook;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use chrono::{SubsecRound, Utc};
use commands::payments::port::{AuthorizeRequest, Called, ChargeSnapshot, Exchange, GatewayError, PaymentGateway};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use transformers::{Charge, Order, OrderList};

use super::redact;

/// Pagar.me settings.
#[derive(Clone)]
pub struct PagarmeConfig {
    /// `https://api.pagar.me/core/v5` (a fake in tests).
    pub base_url: String,
    /// `sk_…` secret key.
    pub secret_key: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for PagarmeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagarmeConfig")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The adapter.
#[derive(Debug, Clone)]
pub struct Pagarme {
    config: PagarmeConfig,
    client: Client,
    authorization: String,
}

impl Pagarme {
    /// An adapter with its own HTTP client.
    pub fn new(config: PagarmeConfig) -> Result<Self, reqwest::Error> {
        let client = Client::builder().timeout(config.timeout).build()?;
        let authorization =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", config.secret_key)));
        Ok(Self { config, client, authorization })
    }

    /// One HTTP exchange, recorded. `Ok(body)` for 2xx.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (Result<Value, GatewayError>, Exchange) {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut request = self
            .client
            .request(method.clone(), &url)
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json");
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let started = Instant::now();
        let mut exchange = Exchange {
            request_line: format!(
                "{method} {}",
                url.split_once("://").and_then(|(_, r)| r.find('/').map(|i| &r[i..])).unwrap_or(path)
            ),
            idempotency_key: key.map(str::to_owned),
            request: body.as_ref().map(redact).unwrap_or(Value::Null),
            http_status: None,
            response: Value::Null,
            outcome: "ok".into(),
            duration_ms: 0,
            at: Utc::now().trunc_subsecs(6),
        };
        let result = match request.send().await {
            Err(e) => {
                exchange.outcome = if e.is_timeout() { "timeout" } else { "error" }.into();
                Err(GatewayError::Unknown(format!("no answer from Pagar.me: {e}")))
            }
            Ok(response) => {
                let status = response.status();
                exchange.http_status = Some(i64::from(status.as_u16()));
                let text = response.text().await.unwrap_or_default();
                let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
                exchange.response = redact(&body);
                if status.is_success() {
                    Ok(body)
                } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    exchange.outcome = "error".into();
                    Err(GatewayError::Unknown(format!(
                        "Pagar.me answered {status}: {}",
                        transformers::error_message(&body)
                    )))
                } else {
                    exchange.outcome = "error".into();
                    Err(GatewayError::Rejected {
                        status: i64::from(status.as_u16()),
                        message: transformers::error_message(&body),
                    })
                }
            }
        };
        exchange.duration_ms = started.elapsed().as_millis() as i64;
        (result, exchange)
    }

    fn charge_of(body: Value) -> Result<ChargeSnapshot, GatewayError> {
        let charge: Charge =
            serde_json::from_value(body).map_err(|e| GatewayError::Unknown(format!("unexpected charge body: {e}")))?;
        Ok(transformers::snapshot("", &charge))
    }
}

fn declined(snapshot: ChargeSnapshot) -> Result<ChargeSnapshot, GatewayError> {
    match &snapshot.status {
        commands::payments::port::ChargeStatus::Failed { code, message } => {
            Err(GatewayError::Declined { code: code.clone(), message: message.clone() })
        }
        _ => Ok(snapshot),
    }
}

#[async_trait]
impl PaymentGateway for Pagarme {
    fn name(&self) -> &'static str {
        "pagarme"
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Called<ChargeSnapshot> {
        let body = transformers::order_body(request);
        let (result, exchange) = self.send(Method::POST, "/orders", Some(body), Some(&request.idempotency_key)).await;
        let result = result.and_then(|body| {
            let order: Order = serde_json::from_value(body)
                .map_err(|e| GatewayError::Unknown(format!("unexpected order body: {e}")))?;
            let charge = order.charges.first().ok_or_else(|| GatewayError::Unknown("order without a charge".into()))?;
            declined(transformers::snapshot(&order.id, charge))
        });
        Called { result, exchanges: vec![exchange] }
    }

    async fn capture(&self, charge_id: &str, amount: i64, idempotency_key: &str) -> Called<ChargeSnapshot> {
        let body = json!({"amount": amount, "code": idempotency_key});
        let (result, exchange) =
            self.send(Method::POST, &format!("/charges/{charge_id}/capture"), Some(body), Some(idempotency_key)).await;
        Called { result: result.and_then(Self::charge_of), exchanges: vec![exchange] }
    }

    async fn cancel(&self, charge_id: &str, amount: Option<i64>, idempotency_key: &str) -> Called<ChargeSnapshot> {
        let body = amount.map(|a| json!({"amount": a}));
        let (result, exchange) =
            self.send(Method::DELETE, &format!("/charges/{charge_id}"), body, Some(idempotency_key)).await;
        Called { result: result.and_then(Self::charge_of), exchanges: vec![exchange] }
    }

    async fn fetch_charge(&self, charge_id: &str) -> Called<ChargeSnapshot> {
        let (result, exchange) = self.send(Method::GET, &format!("/charges/{charge_id}"), None, None).await;
        Called { result: result.and_then(Self::charge_of), exchanges: vec![exchange] }
    }

    async fn find_by_code(&self, code: &str) -> Called<Option<ChargeSnapshot>> {
        let (result, exchange) = self.send(Method::GET, &format!("/orders?code={code}"), None, None).await;
        let result = result.and_then(|body| {
            let list: OrderList = serde_json::from_value(body)
                .map_err(|e| GatewayError::Unknown(format!("unexpected order list: {e}")))?;
            Ok(list
                .data
                .iter()
                .find(|o| o.code.as_deref() == Some(code))
                .and_then(|o| o.charges.first().map(|c| transformers::snapshot(&o.id, c))))
        });
        Called { result, exchanges: vec![exchange] }
    }
}
