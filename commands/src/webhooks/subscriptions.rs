//! Subscription commands (register, update, rotate the secret, deactivate),
//! each one decision on the subscription's stream through the one command path.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{
    webhook::{SubscriptionCommand, SubscriptionState, WebhookRegistered, WebhookSecretRotated, WebhookSubscription},
    CompanyId, DomainError,
};
use serde_json::json;
use uuid::Uuid;

use super::{secrets::NewSecret, Webhooks};
use crate::{
    decision::{self, Stream},
    handler::{load, CommandContext, CommandError},
};

/// Who acts on a subscription.
#[derive(Debug, Clone)]
pub struct WebhookActor {
    /// The caller's company: it may act on its own subscriptions only.
    pub company: CompanyId,
    /// `user:…`, `api-key:…`, `system:webhooks`.
    pub actor: String,
    /// Correlation id of the request, carried into the events' metadata.
    pub correlation: Uuid,
}

impl WebhookActor {
    /// The command context of this actor (the command id is generated).
    pub(super) fn context(&self) -> CommandContext {
        CommandContext {
            company_id: self.company.as_uuid(),
            command_id: None,
            request_hash: vec![],
            correlation_id: self.correlation,
            causation_id: None,
            actor: self.actor.clone(),
        }
    }
}

impl Webhooks {
    /// A subscription of `company` (another company's is not found).
    pub async fn get(&self, company: CompanyId, id: Uuid) -> Result<SubscriptionState, CommandError> {
        let state = load::<WebhookSubscription>(&self.store, &WebhookSubscription::stream_id(id)).await?.state;
        match state.company_id {
            Some(c) if c == company => Ok(state),
            _ => Err(DomainError::NotFound("webhook").into()),
        }
    }

    /// Decides `command` on subscription `id`, storing `secret` in the same
    /// transaction; returns the position to wait for (0 when nothing changed).
    pub(super) async fn command(
        &self,
        ctx: &CommandContext,
        id: Uuid,
        command: SubscriptionCommand,
        secret: Option<&NewSecret>,
    ) -> Result<i64, CommandError> {
        let stream = WebhookSubscription::stream_id(id);
        let company = CompanyId(ctx.company_id);
        let ran = decision::run(
            &self.store,
            ctx,
            "webhook",
            vec![Stream::of::<WebhookSubscription>(stream.as_str())],
            |d| {
                d.decide::<WebhookSubscription>(&stream, command.clone())?;
                if let Some(secret) = secret {
                    d.also(secret.insert(company, id));
                }
                d.version(&stream)
            },
            |version| json!({ "version": version }),
        )
        .await?;
        Ok(ran.events().last().map_or(0, |e| e.position))
    }

    /// Registers a subscription; returns its id, its secret (shown once) and the
    /// position to wait for.
    pub async fn register(
        &self,
        actor: &WebhookActor,
        url: String,
        event_types: Vec<String>,
        description: Option<String>,
    ) -> Result<(Uuid, String, i64), CommandError> {
        let id = Uuid::now_v7();
        let secret = NewSecret::generate();
        let registered = WebhookRegistered {
            subscription_id: id,
            company_id: actor.company,
            url,
            event_types,
            description,
            secret_id: secret.id,
            secret_fingerprint: secret.fingerprint(),
            at: self.clock.now(),
        };
        let position =
            self.command(&actor.context(), id, SubscriptionCommand::Register(registered), Some(&secret)).await?;
        Ok((id, secret.secret, position))
    }

    /// Changes a subscription (URL, filters, description, active).
    pub async fn update(
        &self,
        actor: &WebhookActor,
        id: Uuid,
        url: Option<String>,
        event_types: Option<Vec<String>>,
        description: Option<String>,
        active: Option<bool>,
    ) -> Result<i64, CommandError> {
        self.get(actor.company, id).await?;
        let at = self.clock.now();
        let update = SubscriptionCommand::Update { url, event_types, description, active, at };
        self.command(&actor.context(), id, update, None).await
    }

    /// A new secret; the old one keeps signing for `grace`. Returns the new
    /// secret (shown once), when the old one stops signing, and the position
    /// to wait for.
    pub async fn rotate_secret(
        &self,
        actor: &WebhookActor,
        id: Uuid,
        grace: Duration,
    ) -> Result<(String, DateTime<Utc>, i64), CommandError> {
        let state = self.get(actor.company, id).await?;
        let previous = state.secret_id.ok_or(DomainError::NotFound("webhook"))?;
        let secret = NewSecret::generate();
        let now = self.clock.now();
        let expires = now + chrono::Duration::from_std(grace).unwrap_or_default();
        let rotated = WebhookSecretRotated {
            secret_id: secret.id,
            secret_fingerprint: secret.fingerprint(),
            previous_secret_id: previous,
            previous_expires_at: expires,
            at: now,
        };
        let position =
            self.command(&actor.context(), id, SubscriptionCommand::RotateSecret(rotated), Some(&secret)).await?;
        Ok((secret.secret, expires, position))
    }

    /// Deactivates (DELETE): no more deliveries; the history stays.
    pub async fn deactivate(&self, actor: &WebhookActor, id: Uuid) -> Result<i64, CommandError> {
        self.get(actor.company, id).await?;
        self.command(&actor.context(), id, SubscriptionCommand::Deactivate { at: self.clock.now() }, None).await
    }
}
