-- Linking charger traffic to charge sessions, from the log (no read-model lag).
CREATE INDEX events_session_id_tag_idx ON events ((payload->>'idTag'))
    WHERE event_type = 'charge_session.started';
CREATE INDEX events_session_command_idx ON events ((payload->>'commandId'))
    WHERE event_type = 'charge_session.remote_start_sent';
CREATE INDEX events_session_intent_idx ON events ((payload->>'paymentIntentId'))
    WHERE event_type = 'charge_session.started';

-- Read model of charge sessions, owned by the `sessions` projector: lists,
-- and the queue sweeper (settlements, refunds, receipts, start timeouts).
CREATE SCHEMA rm_sessions;

CREATE TABLE rm_sessions.sessions (
    id                uuid        PRIMARY KEY,
    company_id        uuid        NOT NULL,
    kind              text        NOT NULL,
    status            text        NOT NULL,
    station_id        bigint      NOT NULL,
    charge_point_id   text        NOT NULL,
    connector_id      bigint      NOT NULL,
    method            text        NOT NULL,
    payment_intent_id uuid        NOT NULL,
    transaction_id    text,
    preauth_amount    bigint      NOT NULL,
    authorized        bigint      NOT NULL DEFAULT 0,
    energy_wh         bigint      NOT NULL DEFAULT 0,
    cost_cents        bigint      NOT NULL DEFAULT 0,
    captured_cents    bigint,
    refund_pending    bigint      NOT NULL DEFAULT 0,
    refund_dead       boolean     NOT NULL DEFAULT false,
    receipt_sent      boolean     NOT NULL DEFAULT false,
    remote_start_at   timestamptz,
    next_attempt_at   timestamptz,
    started_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX sessions_company_idx ON rm_sessions.sessions (company_id, kind, started_at DESC, id);
CREATE INDEX sessions_due_idx ON rm_sessions.sessions (status, next_attempt_at);

GRANT USAGE ON SCHEMA rm_sessions TO chargeledger_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rm_sessions TO chargeledger_app;

CREATE INDEX events_session_tx_idx ON events ((payload->>'transactionId'))
    WHERE event_type = 'charge_session.charging_started';
