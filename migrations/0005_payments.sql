-- Finding the intent a gateway charge belongs to (webhooks), from the log.
CREATE INDEX events_payment_charge_idx ON events ((payload->>'chargeId'))
    WHERE event_type IN ('payment_intent.authorized', 'payment_intent.pix_qr_issued');

-- In-flight idempotent requests: a row with status 0 is a request still running;
-- a duplicate meanwhile gets 409 (Stripe semantics).
ALTER TABLE idempotent_responses ALTER COLUMN body DROP NOT NULL;
GRANT UPDATE, DELETE ON idempotent_responses TO chargeledger_app;

-- Read models of payments, owned by the `payments` projector.
CREATE SCHEMA rm_payments;

CREATE TABLE rm_payments.intents (
    id               uuid        PRIMARY KEY,
    company_id       uuid        NOT NULL,
    method           text        NOT NULL,
    status           text        NOT NULL,
    amount           bigint      NOT NULL,
    amount_capturable bigint     NOT NULL DEFAULT 0,
    amount_captured  bigint      NOT NULL DEFAULT 0,
    amount_refunded  bigint      NOT NULL DEFAULT 0,
    customer_id      text,
    charge_id        text,
    failure_code     text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX intents_company_idx ON rm_payments.intents (company_id, created_at DESC, id);
CREATE INDEX intents_status_idx ON rm_payments.intents (status, updated_at);

CREATE TABLE rm_payments.wallets (
    company_id  uuid        NOT NULL,
    customer_id text        NOT NULL,
    balance     bigint      NOT NULL DEFAULT 0,
    held        bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (company_id, customer_id)
);

GRANT USAGE ON SCHEMA rm_payments TO chargeledger_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rm_payments TO chargeledger_app;
