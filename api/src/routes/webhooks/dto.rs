//! The request and response bodies and the query parameters of the webhook
//! routes.

use chrono::{DateTime, Utc};
use projections::webhooks::{AttemptView, SubscriptionView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterWebhookDto {
    /// Where deliveries go: `https://…` (or `http://…`).
    pub url: String,
    /// Event types, with wildcards: `["charge_session.*", "payment_intent.captured"]`; `["*"]` for all.
    #[schema(min_items = 1)]
    pub event_types: Vec<String>,
    /// Free text.
    pub description: Option<String>,
}

/// Changes to a subscription; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhookDto {
    /// New target.
    pub url: Option<String>,
    /// New filters (at least one).
    #[schema(min_items = 1)]
    pub event_types: Option<Vec<String>>,
    /// New description (`""` clears it).
    pub description: Option<String>,
    /// `true` re-enables a disabled subscription; `false` pauses it.
    pub active: Option<bool>,
}

/// Secret rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecretDto {
    /// How long the old secret keeps signing too, seconds (default 86400, at most 604800).
    pub grace_seconds: Option<u64>,
}

/// A subscription with its signing secret (only when it was just created or rotated).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// `whsec_…`: shown only in this first answer. Verify deliveries with it
    /// (Standard Webhooks). `null` in an idempotent replay: the secret is not
    /// kept with stored responses; rotate it if the first answer was lost.
    pub secret: Option<String>,
    /// `true` in an idempotent replay, whose secret was withheld.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret_withheld: bool,
}

/// The result of a test delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestDelivery {
    /// Delivery id.
    pub delivery_id: Uuid,
    /// The `webhook-id` header sent.
    pub message_id: String,
    /// The endpoint answered 2xx.
    pub succeeded: bool,
    /// HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Round trip, ms.
    pub duration_ms: u64,
    /// Start of the answer's body.
    pub response_excerpt: Option<String>,
    /// Why there was no answer.
    pub error: Option<String>,
    /// When the test attempt finished (the endpoint answered, or the request failed).
    pub at: DateTime<Utc>,
}

/// The statuses of a subscription, as the list filters them.
pub(crate) const STATUSES: [&str; 3] = ["active", "disabled", "deactivated"];

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// `active`, `disabled` or `deactivated`.
    #[param(schema_with = crate::openapi::enums::webhook_status)]
    pub status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(schema_with = crate::openapi::enums::keyset_cursor)]
    pub cursor: Option<String>,
}

/// Page filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1 to 200 (default 50).
    #[serde(default, deserialize_with = "crate::routes::whole_number")]
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[param(schema_with = crate::openapi::enums::keyset_cursor)]
    pub cursor: Option<String>,
}

/// A page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPage {
    /// Newest first.
    pub data: Vec<SubscriptionView>,
    /// For the next page.
    pub next_cursor: Option<String>,
}

/// A page of delivery attempts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    /// Newest first: every attempt of every delivery.
    pub data: Vec<AttemptView>,
    /// For the next page.
    pub next_cursor: Option<String>,
}
