-- Webhooks (ADR 0012).
--
-- Signing secrets live here, not in the log: the log is published to analysts.
-- Events name secrets by id and fingerprint. Only the platform reads this table.
CREATE TABLE webhook_secrets (
    id              uuid        PRIMARY KEY,
    subscription_id uuid        NOT NULL,
    company_id      uuid        NOT NULL,
    secret          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_secrets_subscription_idx ON webhook_secrets (subscription_id);
GRANT SELECT, INSERT ON webhook_secrets TO chargeledger_app;

-- Read model of subscriptions, deliveries and attempts, owned by the `webhooks`
-- projector; the delivery worker picks due deliveries from it.
CREATE SCHEMA rm_webhooks;

CREATE TABLE rm_webhooks.subscriptions (
    id                  uuid        PRIMARY KEY,
    company_id          uuid        NOT NULL,
    url                 text        NOT NULL,
    event_types         text[]      NOT NULL,
    description         text,
    status              text        NOT NULL,
    disabled_reason     text,
    secret_id           uuid        NOT NULL,
    previous_secret_id  uuid,
    previous_expires_at timestamptz,
    registered_position bigint      NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX subscriptions_company_idx ON rm_webhooks.subscriptions (company_id, created_at DESC, id);

CREATE TABLE rm_webhooks.deliveries (
    id              uuid        PRIMARY KEY,
    subscription_id uuid        NOT NULL,
    company_id      uuid        NOT NULL,
    message_id      text        NOT NULL,
    event_id        uuid,
    event_type      text        NOT NULL,
    source_stream   text        NOT NULL,
    position        bigint      NOT NULL,
    status          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- Head-of-line: the oldest pending delivery of each (subscription, stream).
CREATE INDEX deliveries_pending_idx ON rm_webhooks.deliveries (subscription_id, source_stream, position)
    WHERE status = 'pending';
CREATE INDEX deliveries_due_idx ON rm_webhooks.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_subscription_idx ON rm_webhooks.deliveries (subscription_id, created_at DESC, id);

CREATE TABLE rm_webhooks.attempts (
    delivery_id      uuid        NOT NULL,
    attempt          integer     NOT NULL,
    subscription_id  uuid        NOT NULL,
    company_id       uuid        NOT NULL,
    at               timestamptz NOT NULL,
    outcome          text        NOT NULL,
    status_code      integer,
    duration_ms      bigint      NOT NULL,
    response_excerpt text,
    error            text,
    next_attempt_at  timestamptz,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX attempts_subscription_idx ON rm_webhooks.attempts (subscription_id, at DESC);

GRANT USAGE ON SCHEMA rm_webhooks TO chargeledger_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rm_webhooks TO chargeledger_app;
