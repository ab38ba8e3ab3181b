//! Pagar.me V5 wire types and their mapping to the port's types.

use chrono::{DateTime, Utc};
use commands::payments::port::{AuthorizeRequest, ChargeSnapshot, ChargeStatus, PixCode};
use domain::payment::PaymentMethod;
use serde::Deserialize;
use serde_json::{json, Value};

/// An order (`or_…`).
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    /// Pagar.me's order id (`or_…`).
    pub id: String,
    /// Our code (the intent id).
    #[serde(default)]
    pub code: Option<String>,
    /// Its charges.
    #[serde(default)]
    pub charges: Vec<Charge>,
}

/// A charge (`ch_…`).
#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    /// Pagar.me's charge id (`ch_…`), used to capture, cancel and fetch it.
    pub id: String,
    /// Amount of the charge in cents, as Pagar.me reports it (0 when absent).
    #[serde(default)]
    pub amount: i64,
    /// Cents collected.
    #[serde(default)]
    pub paid_amount: Option<i64>,
    /// Cents canceled or refunded.
    #[serde(default)]
    pub canceled_amount: Option<i64>,
    /// pending, paid, canceled, failed, processing, …
    pub status: String,
    /// credit_card, pix, …
    #[serde(default)]
    pub payment_method: Option<String>,
    /// Its order (on charge look-ups).
    #[serde(default)]
    pub order: Option<OrderRef>,
    /// The last transaction.
    #[serde(default)]
    pub last_transaction: Option<Transaction>,
}

/// A reference to an order.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderRef {
    /// Id of the charge's order (`or_…`).
    pub id: String,
}

/// A charge's last transaction.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Transaction {
    /// authorized_pending_capture, captured, not_authorized, waiting_payment, …
    #[serde(default)]
    pub status: Option<String>,
    /// Acquirer return code.
    #[serde(default)]
    pub acquirer_return_code: Option<String>,
    /// Acquirer message.
    #[serde(default)]
    pub acquirer_message: Option<String>,
    /// Gateway response with errors.
    #[serde(default)]
    pub gateway_response: Option<Value>,
    /// PIX copy-and-paste code.
    #[serde(default)]
    pub qr_code: Option<String>,
    /// PIX QR image.
    #[serde(default)]
    pub qr_code_url: Option<String>,
    /// PIX deadline.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A list of orders (`GET /orders?code=`).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderList {
    /// Orders whose `code` matched (our intent id); empty when none did.
    #[serde(default)]
    pub data: Vec<Order>,
}

/// The body of `POST /orders`.
pub fn order_body(request: &AuthorizeRequest) -> Value {
    let customer = &request.customer;
    let mut customer_json = json!({
        "name": customer.name.clone().or_else(|| customer.email.clone()).unwrap_or_else(|| "Cliente".into()),
        "type": "individual",
    });
    if let Some(email) = &customer.email {
        customer_json["email"] = json!(email);
    }
    if let Some(cpf) = &customer.cpf {
        customer_json["document"] = json!(cpf.chars().filter(char::is_ascii_digit).collect::<String>());
        customer_json["document_type"] = json!("CPF");
    }
    if let Some(id) = &customer.customer_id {
        customer_json["code"] = json!(id);
    }
    let payment = match request.method {
        PaymentMethod::Pix => {
            json!({"payment_method": "pix", "amount": request.amount, "pix": {"expires_in": request.pix_expires_in}})
        }
        PaymentMethod::GooglePay => json!({"payment_method": "credit_card", "amount": request.amount, "credit_card": {
            "capture": false, "installments": 1, "statement_descriptor": "CHARGELEDGER",
            "payload": {"type": "google_pay", "google_pay": request.network_token.clone().unwrap_or_default()}}}),
        PaymentMethod::ApplePay => json!({"payment_method": "credit_card", "amount": request.amount, "credit_card": {
            "capture": false, "installments": 1, "statement_descriptor": "CHARGELEDGER",
            "card": {"payload": {"type": "apple_pay", "apple_pay": request.network_token.clone().unwrap_or_default()}}}}),
        _ => json!({"payment_method": "credit_card", "amount": request.amount, "credit_card": {
            "capture": false, "installments": 1, "statement_descriptor": "CHARGELEDGER",
            "card_token": request.card_token.clone().unwrap_or_default()}}),
    };
    json!({
        "code": request.intent_id.to_string(),
        "items": [{"amount": request.amount, "description": request.description, "quantity": 1, "code": "ev-charging"}],
        "customer": customer_json,
        "payments": [payment],
        "closed": true,
    })
}

/// Maps a charge to the port's snapshot.
pub fn snapshot(order_id: &str, charge: &Charge) -> ChargeSnapshot {
    let tx = charge.last_transaction.clone().unwrap_or_default();
    let tx_status = tx.status.clone().unwrap_or_default();
    let status = match (charge.status.as_str(), tx_status.as_str()) {
        ("paid", _) => ChargeStatus::Paid,
        ("canceled", _) => ChargeStatus::Canceled,
        ("failed", _) | (_, "not_authorized") => ChargeStatus::Failed {
            code: tx.acquirer_return_code.clone(),
            message: tx
                .acquirer_message
                .clone()
                .or_else(|| {
                    tx.gateway_response
                        .as_ref()
                        .and_then(|g| g.pointer("/errors/0/message"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "declined".into()),
        },
        (_, "authorized_pending_capture") | ("authorized", _) => ChargeStatus::Authorized,
        ("pending", "waiting_payment") | ("pending", _) if charge.payment_method.as_deref() == Some("pix") => {
            ChargeStatus::WaitingPayment
        }
        (other, _) => ChargeStatus::Other(other.to_owned()),
    };
    let pix = match (&tx.qr_code, tx.expires_at) {
        (Some(code), Some(expires_at)) => {
            Some(PixCode { qr_code: code.clone(), qr_code_url: tx.qr_code_url.clone(), expires_at })
        }
        _ => None,
    };
    ChargeSnapshot {
        order_id: charge.order.as_ref().map_or(order_id, |o| o.id.as_str()).to_owned(),
        charge_id: charge.id.clone(),
        status,
        amount: charge.amount,
        paid_amount: charge.paid_amount.unwrap_or(if charge.status == "paid" { charge.amount } else { 0 }),
        canceled_amount: charge.canceled_amount.unwrap_or(0),
        pix,
    }
}

/// The message of an error body (`message` and field `errors`).
pub fn error_message(body: &Value) -> String {
    let message = body.get("message").and_then(Value::as_str).unwrap_or("no message").to_owned();
    match body.get("errors").filter(|e| !e.is_null()) {
        Some(errors) => format!("{message} {errors}"),
        None => message,
    }
}
