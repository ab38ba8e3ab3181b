-- Read model of terminals, owned by the `terminals` projector. It lives in its
-- own schema so a rebuild can fill a shadow copy and swap it in one transaction.
CREATE SCHEMA rm_terminals;

CREATE TABLE rm_terminals.terminals (
    id            text        PRIMARY KEY,
    company_id    uuid        NOT NULL,
    station_id    bigint      NOT NULL,
    vendor        text        NOT NULL,
    model         text        NOT NULL,
    ocpp_version  text        NOT NULL,
    connectors    jsonb       NOT NULL,
    password_hash text,
    status        text        NOT NULL,
    status_reason text,
    last_seen_at  timestamptz,
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint      NOT NULL
);
CREATE INDEX terminals_company_idx ON rm_terminals.terminals (company_id, id);
CREATE INDEX terminals_company_status_idx ON rm_terminals.terminals (company_id, status, id);
CREATE INDEX terminals_company_station_idx ON rm_terminals.terminals (company_id, station_id, id);

CREATE TABLE rm_terminals.health_events (
    event_id    uuid        PRIMARY KEY,
    company_id  uuid        NOT NULL,
    terminal_id text        NOT NULL,
    kind        text        NOT NULL,
    severity    text        NOT NULL,
    code        text,
    message     text,
    occurred_at timestamptz NOT NULL,
    reported_at timestamptz NOT NULL
);
CREATE INDEX health_events_company_kind_idx ON rm_terminals.health_events (company_id, kind, occurred_at);

GRANT USAGE ON SCHEMA rm_terminals TO chargeledger_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rm_terminals TO chargeledger_app;
