-- Commands waiting for a charger: found by charger id among requested commands.
CREATE INDEX events_ocpp_command_requested_idx ON events ((payload->>'chargePointId'), position)
    WHERE event_type = 'ocpp_command.requested';

-- Read models of the OCPP gateway, owned by the `ocpp` projector.
CREATE SCHEMA rm_ocpp;

CREATE TABLE rm_ocpp.chargers (
    id               text        PRIMARY KEY,
    company_id       uuid        NOT NULL,
    connected        boolean     NOT NULL,
    connection_id    uuid,
    gateway_id       uuid,
    protocol         text        NOT NULL,
    vendor           text,
    model            text,
    serial_number    text,
    firmware_version text,
    booted_at        timestamptz,
    connected_at     timestamptz,
    disconnected_at  timestamptz,
    last_seen_at     timestamptz
);
CREATE INDEX chargers_company_idx ON rm_ocpp.chargers (company_id, id);

CREATE TABLE rm_ocpp.connectors (
    charger_id   text        NOT NULL,
    evse_id      bigint      NOT NULL,
    connector_id bigint      NOT NULL,
    company_id   uuid        NOT NULL,
    status       text        NOT NULL,
    error_code   text,
    info         text,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (charger_id, evse_id, connector_id)
);
CREATE INDEX connectors_company_idx ON rm_ocpp.connectors (company_id, charger_id);

CREATE TABLE rm_ocpp.transactions (
    charger_id      text        NOT NULL,
    transaction_id  text        NOT NULL,
    company_id      uuid        NOT NULL,
    evse_id         bigint,
    connector_id    bigint,
    id_tag          text,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    stop_reason     text,
    meter_start_wh  bigint,
    meter_stop_wh   bigint,
    energy_wh       bigint,
    power_w         bigint,
    soc_percent     bigint,
    last_sample_at  timestamptz,
    anomalies       integer     NOT NULL DEFAULT 0,
    sequence_gaps   integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (charger_id, transaction_id)
);
CREATE INDEX transactions_company_idx ON rm_ocpp.transactions (company_id, charger_id, started_at);

GRANT USAGE ON SCHEMA rm_ocpp TO chargeledger_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rm_ocpp TO chargeledger_app;
