-- Charging infrastructure (ADR 0013).
--
-- Adapter credentials live here, sealed (AES-256-GCM, key derived from the
-- server secret), not in the log: the log is published to analysts. The
-- `cpms_config.adapter_configured` event names them and is appended in the same
-- transaction. One row per credential; a removed credential's row is deleted,
-- so a replaced or removed secret does not linger.
CREATE TABLE cpms_credentials (
    company_id     uuid        NOT NULL,
    adapter_type   text        NOT NULL,
    name           text        NOT NULL,
    sealed         text        NOT NULL,
    config_version bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, adapter_type, name)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON cpms_credentials TO chargeledger_app;

-- Read model of mappings, their charge points with the last test of each, and
-- adapter settings (credential names only), owned by the `infrastructure` projector.
CREATE SCHEMA rm_infrastructure;

CREATE TABLE rm_infrastructure.mappings (
    id               uuid        PRIMARY KEY,
    company_id       uuid        NOT NULL,
    station_id       bigint      NOT NULL,
    adapter_type     text        NOT NULL,
    charge_point_ids jsonb       NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    last_test_at     timestamptz,
    last_test_ok     boolean,
    last_test_error  text,
    last_success_at  timestamptz,
    version          bigint      NOT NULL
);
CREATE INDEX mappings_company_idx ON rm_infrastructure.mappings (company_id, created_at DESC, id) WHERE NOT deleted;
CREATE INDEX mappings_company_station_idx ON rm_infrastructure.mappings (company_id, station_id) WHERE NOT deleted;

CREATE TABLE rm_infrastructure.charge_points (
    mapping_id      uuid        NOT NULL,
    charge_point_id text        NOT NULL,
    company_id      uuid        NOT NULL,
    position        integer     NOT NULL,
    last_result     text,
    last_error      text,
    last_latency_ms bigint,
    last_tested_at  timestamptz,
    last_success_at timestamptz,
    PRIMARY KEY (mapping_id, charge_point_id)
);
CREATE INDEX charge_points_company_idx ON rm_infrastructure.charge_points (company_id, charge_point_id);

CREATE TABLE rm_infrastructure.adapter_configs (
    company_id       uuid        NOT NULL,
    adapter_type     text        NOT NULL,
    timeout_ms       bigint      NOT NULL,
    retries          bigint      NOT NULL,
    credential_names jsonb       NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (company_id, adapter_type)
);

GRANT USAGE ON SCHEMA rm_infrastructure TO chargeledger_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rm_infrastructure TO chargeledger_app;
