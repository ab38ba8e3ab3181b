//! Signing secrets: kept outside the log (`webhook_secrets`, insert and
//! select only), named in events by id and fingerprint.

use chrono::{DateTime, Utc};
use domain::{webhook::SubscriptionState, CompanyId};
use sqlx::Row;
use uuid::Uuid;

use super::{
    signing::{fingerprint, new_secret},
    Webhooks,
};
use crate::{decision::SideWrite, store::StoreError};

/// A secret generated for a subscription, not stored yet.
#[derive(Debug, Clone)]
pub(super) struct NewSecret {
    /// Its row id, named by the event.
    pub id: Uuid,
    /// The secret itself (shown to the caller once).
    pub secret: String,
}

impl NewSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self { id: Uuid::now_v7(), secret: new_secret() }
    }

    /// The fingerprint the event carries.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.secret)
    }

    /// Stores the secret in the transaction of the event that names it: a
    /// refused command leaves no orphan secret behind, and no event names a
    /// secret that was not stored.
    pub fn insert(&self, company: CompanyId, subscription: Uuid) -> SideWrite {
        let (id, secret) = (self.id, self.secret.clone());
        Box::new(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO webhook_secrets (id, subscription_id, company_id, secret) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(subscription)
                .bind(company.as_uuid())
                .bind(&secret)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
    }
}

/// The secrets that sign at `now`: the current one, and the previous one
/// while its grace period lasts; current first.
pub(super) fn live_secret_ids(state: &SubscriptionState, now: DateTime<Utc>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = state.secret_id.into_iter().collect();
    if let Some((previous, until)) = state.previous_secret {
        if until > now {
            ids.push(previous);
        }
    }
    ids
}

impl Webhooks {
    /// The secrets that sign an attempt now, current first.
    pub(super) async fn signing_secrets(&self, state: &SubscriptionState) -> Result<Vec<String>, StoreError> {
        let ids = live_secret_ids(state, self.clock.now());
        let rows = sqlx::query("SELECT id, secret FROM webhook_secrets WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(self.store.pool())
            .await?;
        // The query does not keep the order of `ids`; receivers try signatures
        // in order, so the current one goes first.
        let mut secrets = Vec::new();
        for id in ids {
            if let Some(row) = rows.iter().find(|r| r.try_get::<Uuid, _>("id").ok() == Some(id)) {
                secrets.push(row.try_get::<String, _>("secret")?);
            }
        }
        Ok(secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    fn rotated(current: Uuid, previous: Uuid, until: DateTime<Utc>) -> SubscriptionState {
        SubscriptionState { secret_id: Some(current), previous_secret: Some((previous, until)), ..Default::default() }
    }

    #[test]
    fn given_a_rotation_when_within_its_grace_then_both_secrets_sign_current_first() {
        let (current, previous) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(live_secret_ids(&rotated(current, previous, at(60)), at(0)), vec![current, previous]);
    }

    #[test]
    fn given_a_rotation_when_its_grace_is_over_then_only_the_current_secret_signs() {
        let (current, previous) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(live_secret_ids(&rotated(current, previous, at(60)), at(60)), vec![current]);
        assert!(live_secret_ids(&SubscriptionState::default(), at(0)).is_empty());
    }
}
