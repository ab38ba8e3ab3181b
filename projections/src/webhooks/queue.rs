//! The delivery worker's questions answered from `rm_webhooks`: the
//! [`WebhookQueue`] port of `commands`, implemented where the tables live so
//! a column rename breaks here, at compile and test time of this crate.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use commands::webhooks::{ReadModelError, Subscriber, WebhookQueue};
use domain::CompanyId;
use sqlx::PgPool;
use uuid::Uuid;

use super::NAME;

/// [`WebhookQueue`] over the `webhooks` read model.
#[derive(Debug, Clone)]
pub struct ReadModelQueue {
    pool: PgPool,
}

impl ReadModelQueue {
    /// The queue on the read model in `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

use crate::read_model_error;

#[async_trait]
impl WebhookQueue for ReadModelQueue {
    async fn seen_up_to(&self) -> Result<i64, ReadModelError> {
        crate::runtime::checkpoint(&self.pool, NAME).await.map_err(read_model_error)
    }

    async fn subscriptions_for(&self, companies: &[CompanyId]) -> Result<Vec<Subscriber>, ReadModelError> {
        let companies: Vec<Uuid> = companies.iter().map(CompanyId::as_uuid).collect();
        let rows: Vec<(Uuid, Uuid, Vec<String>, i64)> = sqlx::query_as(
            "SELECT id, company_id, event_types, registered_position FROM rm_webhooks.subscriptions \
             WHERE status IN ('active', 'disabled') AND company_id = ANY($1)",
        )
        .bind(&companies)
        .fetch_all(&self.pool)
        .await
        .map_err(read_model_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, company, event_types, registered_position)| Subscriber {
                id,
                company: CompanyId(company),
                event_types,
                registered_position,
            })
            .collect())
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>, ReadModelError> {
        sqlx::query_scalar(
            "SELECT d.id FROM rm_webhooks.deliveries d JOIN rm_webhooks.subscriptions s ON s.id = d.subscription_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND s.status = 'active' AND d.event_id IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM rm_webhooks.deliveries e WHERE e.subscription_id = d.subscription_id \
                               AND e.source_stream = d.source_stream AND e.status = 'pending' AND e.position < d.position) \
             ORDER BY d.next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(read_model_error)
    }
}
