//! The `payments` read models: intents (for lists and the reconciler) and
//! wallet balances.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::RecordedEvent;
use domain::{
    payment::{PaymentIntentEvent, PaymentIntentEvent as E},
    wallet::WalletEvent,
    CompanyId,
};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::runtime::{ProjectionError, Projector};

/// Name of the projector.
pub const NAME: &str = "payments";

/// Projects `payment_intent.*` and `wallet.*` into `rm_payments`.
#[derive(Debug, Default)]
pub struct PaymentsProjector;

async fn set(
    conn: &mut PgConnection,
    id: Uuid,
    sql: &str,
    at: DateTime<Utc>,
    values: &[i64],
) -> Result<(), sqlx::Error> {
    let mut q = sqlx::query(sql).bind(id).bind(at);
    for v in values {
        q = q.bind(*v);
    }
    q.execute(conn).await.map(drop)
}

#[async_trait]
impl Projector for PaymentsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> &'static str {
        "rm_payments"
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let decode_error =
            |e: domain::EventDecodeError| ProjectionError::Decode { position: event.position, reason: e.to_string() };
        let at = event.recorded_at;
        match event.category() {
            "payment_intent" => {
                let id =
                    event.stream_id.split_once('-').and_then(|(_, id)| Uuid::parse_str(id).ok()).unwrap_or_default();
                let status = |s: &str| format!("UPDATE intents SET status = '{s}', updated_at = $2 WHERE id = $1");
                match event.decode::<PaymentIntentEvent>().map_err(decode_error)? {
                    E::Created(c) => {
                        sqlx::query(
                            "INSERT INTO intents (id, company_id, method, status, amount, customer_id, created_at, updated_at) \
                             VALUES ($1, $2, $3, 'requires_authorization', $4, $5, $6, $6)",
                        )
                        .bind(id)
                        .bind(c.company_id)
                        .bind(c.method.as_str())
                        .bind(c.amount)
                        .bind(&c.customer.customer_id)
                        .bind(c.created_at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    E::OperationRequested(_) => set(conn, id, &status("processing"), at, &[]).await?,
                    E::PixQrIssued(p) => {
                        sqlx::query("UPDATE intents SET charge_id = $3, updated_at = $2 WHERE id = $1")
                            .bind(id)
                            .bind(at)
                            .bind(&p.charge_id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    E::Authorized(a) => {
                        sqlx::query(
                            "UPDATE intents SET status = 'requires_capture', amount_capturable = $3, charge_id = COALESCE($4, charge_id), updated_at = $2 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(at)
                        .bind(a.amount_capturable)
                        .bind(&a.charge_id)
                        .execute(&mut *conn)
                        .await?;
                    }
                    E::OperationFailed(f) => {
                        // Only a failed authorization fails the intent; other failures return it to where it was.
                        let next = match f.operation {
                            domain::payment::Operation::Authorize => "failed",
                            domain::payment::Operation::Refund => "succeeded",
                            _ => "requires_capture",
                        };
                        sqlx::query("UPDATE intents SET status = $3, failure_code = $4, updated_at = $2 WHERE id = $1")
                            .bind(id)
                            .bind(at)
                            .bind(next)
                            .bind(&f.code)
                            .execute(&mut *conn)
                            .await?;
                    }
                    E::Captured(c) => {
                        set(conn, id, "UPDATE intents SET status = 'succeeded', amount_captured = $3, amount_capturable = 0, updated_at = $2 WHERE id = $1", at, &[c.amount_captured]).await?
                    }
                    E::Voided(_) => set(conn, id, "UPDATE intents SET status = 'canceled', amount_capturable = 0, updated_at = $2 WHERE id = $1", at, &[]).await?,
                    E::Refunded(r) => {
                        set(conn, id, "UPDATE intents SET status = 'succeeded', amount_refunded = amount_refunded + $3, updated_at = $2 WHERE id = $1", at, &[r.amount]).await?
                    }
                    E::Expired(_) => set(conn, id, &status("expired"), at, &[]).await?,
                    E::GatewayExchanged(_) | E::OutcomeUnknown(_) | E::WebhookReceived(_) => {}
                }
            }
            "wallet" => {
                let company = event.company_id().unwrap_or_default();
                let customer = event.stream_id.split_once(':').map_or("", |(_, c)| c);
                let (balance, held) = match event.decode::<WalletEvent>().map_err(decode_error)? {
                    WalletEvent::Credited(c) => (c.amount, 0),
                    WalletEvent::HoldPlaced(h) => (0, h.amount),
                    WalletEvent::HoldCaptured(h) => (-h.amount, -h.amount),
                    WalletEvent::HoldReleased(h) => (0, -h.amount),
                    WalletEvent::Debited(d) => (-d.amount, 0),
                    WalletEvent::DebitReversed(d) => (d.amount, 0),
                };
                sqlx::query(
                    "INSERT INTO wallets (company_id, customer_id, balance, held, updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (company_id, customer_id) DO UPDATE SET balance = wallets.balance + $3, held = wallets.held + $4, updated_at = $5",
                )
                .bind(company)
                .bind(customer)
                .bind(balance)
                .bind(held)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// An intent in a list.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IntentSummary {
    /// The intent's id (its stream is `payment_intent-<id>`).
    pub id: Uuid,
    /// CREDIT_CARD, GOOGLE_PAY, APPLE_PAY, PIX, WALLET or VIP.
    pub method: String,
    /// requires_authorization, processing, requires_capture, succeeded, canceled, failed
    /// or expired.
    pub status: String,
    /// Amount asked at creation, in integer cents of BRL.
    pub amount: i64,
    /// Cents still capturable.
    pub amount_capturable: i64,
    /// Cents captured.
    pub amount_captured: i64,
    /// Cents refunded.
    pub amount_refunded: i64,
    /// Our customer id of the payer, when given (the wallet owner for WALLET).
    pub customer_id: Option<String>,
    /// Failure code, when it failed.
    pub failure_code: Option<String>,
    /// When the intent was created (the time its `payment_intent.created` event carries).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A page of the company's intents, newest first, optionally by status and
/// customer, after the cursor (created_at, id).
pub async fn list(
    pool: &PgPool,
    company: Uuid,
    status: Option<&str>,
    customer: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<IntentSummary>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, method, status, amount, amount_capturable, amount_captured, amount_refunded, customer_id, failure_code, created_at, updated_at \
         FROM rm_payments.intents WHERE company_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR customer_id = $3) \
         AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) ORDER BY created_at DESC, id DESC LIMIT $6",
    )
    .bind(company)
    .bind(status)
    .bind(customer)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(IntentSummary {
                id: r.try_get("id")?,
                method: r.try_get("method")?,
                status: r.try_get("status")?,
                amount: r.try_get("amount")?,
                amount_capturable: r.try_get("amount_capturable")?,
                amount_captured: r.try_get("amount_captured")?,
                amount_refunded: r.try_get("amount_refunded")?,
                customer_id: r.try_get("customer_id")?,
                failure_code: r.try_get("failure_code")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

/// Intents with an operation in flight (`processing`) since before `now -
/// grace` (so requests still waiting for the gateway are left alone), in
/// random order so one stuck intent cannot starve the others: the reconciler's
/// work list. It re-reads each intent's stream before it acts.
pub async fn in_flight(
    pool: &PgPool,
    now: DateTime<Utc>,
    grace: std::time::Duration,
    limit: i64,
) -> Result<Vec<(Uuid, CompanyId)>, sqlx::Error> {
    let since = chrono::Duration::from_std(grace)
        .ok()
        .and_then(|g| now.checked_sub_signed(g))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, company_id FROM rm_payments.intents WHERE status = 'processing' \
         AND updated_at < $2 ORDER BY random() LIMIT $1",
    )
    .bind(limit)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id, company)| (id, CompanyId(company))).collect())
}
