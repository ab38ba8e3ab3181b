//! The simulator gateway: approves every card token except the documented
//! test tokens, issues PIX codes that pay themselves after a delay, and keeps
//! its orders in memory. The default for demos; never for real money.
//!
//! Test tokens (card token, or the `token` field of a wallet payload):
//! - `tok_decline`: declined by the issuer (acquirer code 51);
//! - `tok_timeout`: the order is created but the answer never arrives
//!   (the intent stays `processing` until reconciled, then is authorized);
//! - `tok_error`: a 502 and no order (reconciliation then fails the intent).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use commands::payments::port::{
    AuthorizeRequest, Called, ChargeSnapshot, ChargeStatus, Exchange, GatewayError, PaymentGateway, PixCode,
};
use domain::payment::PaymentMethod;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Clone)]
struct SimCharge {
    snapshot: ChargeSnapshot,
    code: String,
    created: Instant,
}

/// The simulator.
#[derive(Debug)]
pub struct Simulator {
    charges: Mutex<HashMap<String, SimCharge>>,
    pix_autopay_after: Duration,
}

impl Simulator {
    /// A simulator whose PIX codes count as paid `pix_autopay_after` after issue.
    pub fn new(pix_autopay_after: Duration) -> Self {
        Self { charges: Mutex::new(HashMap::new()), pix_autopay_after }
    }

    fn exchange(line: String, key: Option<&str>, request: Value, response: Value, outcome: &str) -> Exchange {
        Exchange {
            request_line: line,
            idempotency_key: key.map(str::to_owned),
            request: super::redact(&request),
            http_status: if outcome == "timeout" {
                None
            } else {
                Some(if outcome == "ok" || outcome == "declined" { 200 } else { 502 })
            },
            response,
            outcome: outcome.into(),
            duration_ms: 0,
            at: Utc::now().trunc_subsecs(6),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, SimCharge>) -> T) -> Option<T> {
        self.charges.lock().ok().map(|mut m| f(&mut m))
    }

    fn current(&self, charge: &mut SimCharge) -> ChargeSnapshot {
        if charge.snapshot.status == ChargeStatus::WaitingPayment && charge.created.elapsed() >= self.pix_autopay_after
        {
            charge.snapshot.status = ChargeStatus::Paid;
            charge.snapshot.paid_amount = charge.snapshot.amount;
        }
        charge.snapshot.clone()
    }
}

fn describe(s: &ChargeSnapshot) -> Value {
    json!({"id": s.charge_id, "order": s.order_id, "status": format!("{:?}", s.status), "amount": s.amount, "paid_amount": s.paid_amount, "canceled_amount": s.canceled_amount})
}

#[async_trait]
impl PaymentGateway for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    async fn authorize(&self, request: &AuthorizeRequest) -> Called<ChargeSnapshot> {
        let token = request
            .card_token
            .clone()
            .or_else(|| {
                request.network_token.as_ref().and_then(|t| t.get("token")).and_then(Value::as_str).map(str::to_owned)
            })
            .unwrap_or_default();
        let body = json!({"code": request.intent_id, "amount": request.amount, "method": request.method.as_str(), "card_token": token});
        let line = "POST simulator/orders".to_owned();
        if token == "tok_error" {
            let exchange = Self::exchange(
                line,
                Some(&request.idempotency_key),
                body,
                json!({"message": "bad gateway (simulated)"}),
                "error",
            );
            return Called {
                result: Err(GatewayError::Unknown("502 from the simulator".into())),
                exchanges: vec![exchange],
            };
        }
        let id = Uuid::new_v4().simple().to_string();
        let mut snapshot = ChargeSnapshot {
            order_id: format!("or_sim{}", &id[..16]),
            charge_id: format!("ch_sim{}", &id[16..]),
            status: ChargeStatus::Authorized,
            amount: request.amount,
            paid_amount: 0,
            canceled_amount: 0,
            pix: None,
        };
        if request.method == PaymentMethod::Pix {
            snapshot.status = ChargeStatus::WaitingPayment;
            snapshot.pix = Some(PixCode {
                qr_code: format!(
                    "00020101021226880014br.gov.bcb.pix2566sim/{}5204000053039865802BR6304",
                    request.intent_id
                ),
                qr_code_url: None,
                expires_at: Utc::now().trunc_subsecs(6) + chrono::Duration::seconds(request.pix_expires_in),
            });
        } else if token == "tok_decline" {
            snapshot.status =
                ChargeStatus::Failed { code: Some("51".into()), message: "insufficient funds (simulated)".into() };
        }
        // Idempotency: the same key gives the same order.
        let existing = self
            .with(|m| m.values().find(|c| c.code == request.intent_id.to_string()).map(|c| c.snapshot.clone()))
            .flatten();
        let snapshot = match existing {
            Some(s) => s,
            None => {
                let sim = SimCharge {
                    snapshot: snapshot.clone(),
                    code: request.intent_id.to_string(),
                    created: Instant::now(),
                };
                self.with(|m| m.insert(snapshot.charge_id.clone(), sim));
                snapshot
            }
        };
        if token == "tok_timeout" {
            let exchange = Self::exchange(line, Some(&request.idempotency_key), body, Value::Null, "timeout");
            return Called {
                result: Err(GatewayError::Unknown("no answer in time (simulated)".into())),
                exchanges: vec![exchange],
            };
        }
        let outcome = if matches!(snapshot.status, ChargeStatus::Failed { .. }) { "declined" } else { "ok" };
        let exchange = Self::exchange(line, Some(&request.idempotency_key), body, describe(&snapshot), outcome);
        let result = match &snapshot.status {
            ChargeStatus::Failed { code, message } => {
                Err(GatewayError::Declined { code: code.clone(), message: message.clone() })
            }
            _ => Ok(snapshot),
        };
        Called { result, exchanges: vec![exchange] }
    }

    async fn capture(&self, charge_id: &str, amount: i64, idempotency_key: &str) -> Called<ChargeSnapshot> {
        let line = format!("POST simulator/charges/{charge_id}/capture");
        let result = self
            .with(|m| {
                let charge = m
                    .get_mut(charge_id)
                    .ok_or(GatewayError::Rejected { status: 404, message: "charge not found".into() })?;
                if charge.snapshot.status != ChargeStatus::Authorized || amount > charge.snapshot.amount {
                    return Err(GatewayError::Rejected { status: 412, message: "charge cannot be captured".into() });
                }
                charge.snapshot.status = ChargeStatus::Paid;
                charge.snapshot.paid_amount = amount;
                charge.snapshot.canceled_amount = charge.snapshot.amount - amount;
                Ok(charge.snapshot.clone())
            })
            .unwrap_or_else(|| Err(GatewayError::Unknown("simulator unavailable".into())));
        let response = result.as_ref().map(describe).unwrap_or(Value::Null);
        Called {
            exchanges: vec![Self::exchange(
                line,
                Some(idempotency_key),
                json!({"amount": amount}),
                response,
                if result.is_ok() { "ok" } else { "error" },
            )],
            result,
        }
    }

    async fn cancel(&self, charge_id: &str, amount: Option<i64>, idempotency_key: &str) -> Called<ChargeSnapshot> {
        let line = format!("DELETE simulator/charges/{charge_id}");
        let result = self
            .with(|m| {
                let charge = m
                    .get_mut(charge_id)
                    .ok_or(GatewayError::Rejected { status: 404, message: "charge not found".into() })?;
                let s = &mut charge.snapshot;
                let left =
                    if s.status == ChargeStatus::Paid { s.paid_amount - s.canceled_amount.max(0) } else { s.amount };
                let amount = amount.unwrap_or(left);
                if amount > left.max(s.amount) {
                    return Err(GatewayError::Rejected {
                        status: 412,
                        message: "amount above what can be canceled".into(),
                    });
                }
                s.canceled_amount += amount;
                if s.status != ChargeStatus::Paid || s.canceled_amount >= s.paid_amount {
                    s.status = ChargeStatus::Canceled;
                }
                Ok(s.clone())
            })
            .unwrap_or_else(|| Err(GatewayError::Unknown("simulator unavailable".into())));
        let response = result.as_ref().map(describe).unwrap_or(Value::Null);
        Called {
            exchanges: vec![Self::exchange(
                line,
                Some(idempotency_key),
                json!({"amount": amount}),
                response,
                if result.is_ok() { "ok" } else { "error" },
            )],
            result,
        }
    }

    async fn fetch_charge(&self, charge_id: &str) -> Called<ChargeSnapshot> {
        let line = format!("GET simulator/charges/{charge_id}");
        let result = self
            .with(|m| m.get_mut(charge_id).map(|c| self.current(c)))
            .flatten()
            .ok_or(GatewayError::Rejected { status: 404, message: "charge not found".into() });
        let response = result.as_ref().map(describe).unwrap_or(Value::Null);
        Called { exchanges: vec![Self::exchange(line, None, Value::Null, response, "ok")], result }
    }

    async fn find_by_code(&self, code: &str) -> Called<Option<ChargeSnapshot>> {
        let line = format!("GET simulator/orders?code={code}");
        let found = self.with(|m| m.values_mut().find(|c| c.code == code).map(|c| self.current(c))).flatten();
        let response = found.as_ref().map(describe).unwrap_or(Value::Null);
        Called { exchanges: vec![Self::exchange(line, None, Value::Null, response, "ok")], result: Ok(found) }
    }
}
