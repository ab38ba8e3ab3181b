//! Webhooks (ADR 0012): subscriptions, and the delivery worker driven by the
//! log, Standard Webhooks style.
//!
//! - [`subscriptions`]: register, update, rotate the secret, deactivate;
//!   [`secrets`] keeps the secrets, [`signing`] signs with them.
//! - [`scheduler`]: one delivery per matching subscription of each event's
//!   company that is not deactivated (a disabled one keeps them for when it is
//!   re-enabled).
//! - [`dispatcher`]: sends due deliveries, only the oldest pending one of each
//!   (subscription, source stream), so each entity's events arrive in order.
//!   Every [`attempt`] is an event with the status, duration and the start of
//!   the answer; retries follow the schedule (5 s, 5 min, 30 min, 2 h, 5 h,
//!   10 h, 10 h, each ±10 %), never before a `Retry-After`; 410 Gone, or a
//!   delivery that exhausts its retries, disables the subscription.
//! - Headers: `webhook-id` (the same on every attempt), `webhook-timestamp`
//!   (this attempt, Unix seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256
//!   of id.timestamp.body>`, one per live secret, space-separated).
//!
//! Every write is a decision of [`crate::decision::run`]; what the worker
//! needs to know from the `webhooks` read model comes through the
//! [`WebhookQueue`] port; every time that decides something comes from the
//! injected [`Clock`].

pub mod attempt;
mod config;
pub mod dispatcher;
pub mod queue;
pub mod scheduler;
mod secrets;
pub mod signing;
pub mod subscriptions;

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use self::{
    attempt::AttemptResult,
    config::{SendOutcome, WebhookConfig, WebhookSender},
    queue::{ReadModelError, Subscriber, WebhookQueue},
    scheduler::CHECKPOINT,
    signing::{fingerprint, new_secret, sign},
    subscriptions::WebhookActor,
};
use crate::{
    clock::Clock,
    handler::{CommandContext, CommandError},
    store::{EventStore, StoreError},
};

/// Why a pass of the scheduler or the dispatcher failed (it is retried on the
/// next tick).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A command or the log failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The `webhooks` read model could not answer.
    #[error(transparent)]
    Queue(#[from] ReadModelError),
}

impl From<StoreError> for WebhookError {
    fn from(value: StoreError) -> Self {
        Self::Command(value.into())
    }
}

/// Webhook subscriptions and their delivery.
#[derive(Clone)]
pub struct Webhooks {
    store: EventStore,
    sender: Arc<dyn WebhookSender>,
    queue: Arc<dyn WebhookQueue>,
    config: WebhookConfig,
    /// Decides schedules: when deliveries are due, retries, grace periods.
    clock: Clock,
    /// Stamps signatures, which receivers check against their own clocks:
    /// tests move `clock` to reach retries, never this one.
    wall_clock: Clock,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The context of the worker's commands on delivery `scheduled`: the
/// platform acts, correlated by the delivery, caused by its source event.
fn delivery_context(scheduled: &domain::webhook::DeliveryScheduled, command_id: Option<String>) -> CommandContext {
    CommandContext {
        company_id: scheduled.company_id.as_uuid(),
        command_id,
        request_hash: vec![],
        correlation_id: scheduled.delivery_id,
        causation_id: scheduled.event_id,
        actor: "system:webhooks".into(),
    }
}

impl Webhooks {
    /// The service: `sender` makes the HTTP requests, `queue` answers from
    /// the `webhooks` read model, `clock` decides every schedule.
    pub fn new(
        store: EventStore,
        sender: Arc<dyn WebhookSender>,
        queue: Arc<dyn WebhookQueue>,
        config: WebhookConfig,
        clock: Clock,
    ) -> Self {
        Self { store, sender, queue, config, clock, wall_clock: Clock::default() }
    }

    /// The same service, stamping signatures with `clock` instead of the
    /// system clock.
    #[must_use]
    pub fn with_wall_clock(mut self, clock: Clock) -> Self {
        self.wall_clock = clock;
        self
    }

    /// The clock schedules use.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Runs the scheduler and the dispatcher until shutdown.
    pub async fn run(self, shutdown: CancellationToken, tick: Duration) {
        let mut wakeups = self.store.subscribe();
        loop {
            wakeups.mark_unchanged();
            let mut busy = false;
            match self.schedule_new().await {
                Ok(n) => busy |= n > 0,
                Err(error) => tracing::warn!(%error, "webhook scheduling failed; retrying"),
            }
            match self.dispatch_due().await {
                Ok(n) => busy |= n > 0,
                Err(error) => tracing::warn!(%error, "webhook dispatch failed; retrying"),
            }
            if busy {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wakeups.changed() => {}
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }
}

/// The delivery's id as a message id (`webhook-id`): stable across attempts.
pub fn message_id(delivery: Uuid) -> String {
    format!("msg_{}", delivery.simple())
}
