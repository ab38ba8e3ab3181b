-- The event log: the single source of truth. Append-only, hash-chained per stream.
--
-- position = (writer's transaction id << 16) + index of the event inside that
-- transaction. Readers only read positions below events_watermark(): every
-- transaction that could still add a row below it has finished, and every later
-- one will get a larger position, so the set of rows a reader can see below the
-- watermark never grows behind it. No reader skips an event, and writers commit
-- concurrently (see docs/adr/0002-gap-free-global-order.md).
CREATE TABLE events (
    position       bigint      PRIMARY KEY,
    stream_id      text        NOT NULL,
    stream_version bigint      NOT NULL CHECK (stream_version >= 1),
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL CHECK (schema_version >= 1),
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    prev_hash      bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash           bytea       NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- The read watermark, as a position: the oldest transaction that was still in
-- progress in the caller's snapshot and could be writing here, shifted like a
-- position (or the snapshot's xmax when there is none). Transactions that
-- pg_stat_activity places in another database of the cluster are skipped: they
-- cannot write to this table, and without this a long transaction anywhere on
-- the cluster would stall every reader. When in doubt (unknown, 2PC, hidden
-- stats) a transaction counts as ours, which only delays readers, never skips.
-- STABLE, so it sees the calling statement's snapshot; call it as a scalar
-- subquery so it is evaluated once.
CREATE FUNCTION events_watermark() RETURNS bigint
LANGUAGE sql STABLE AS $$
    WITH snap AS (SELECT pg_current_snapshot() AS s),
    elsewhere AS (
        SELECT backend_xid::text::bigint AS xid
        FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
    )
    SELECT COALESCE(
        (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
          WHERE (x::text::bigint & 4294967295) NOT IN (SELECT xid FROM elsewhere)),
        (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)
    ) << 16
$$;

-- Commands already executed, by company and command id (Idempotency-Key or OCPP
-- message id): a repeat returns the stored outcome instead of acting again.
CREATE TABLE command_log (
    company_id   uuid        NOT NULL,
    command_id   text        NOT NULL,
    command_type text        NOT NULL,
    request_hash bytea       NOT NULL,
    outcome      jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT command_log_pkey PRIMARY KEY (company_id, command_id)
);

CREATE FUNCTION refuse_change_to_append_only_table() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Statement-level, so an UPDATE or DELETE that matches no row is refused too.
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_to_append_only_table();
CREATE TRIGGER command_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON command_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_to_append_only_table();

-- The role the application should log in as in production: it can read and
-- append, nothing else. (Roles are cluster-wide; creating it twice is fine.)
DO $$
BEGIN
    CREATE ROLE chargeledger_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
GRANT SELECT, INSERT ON events, command_log TO chargeledger_app;

-- Projector checkpoints: the last global position each projector applied.
CREATE TABLE projector_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON projector_checkpoints TO chargeledger_app;

-- API keys: only the SHA-256 of the key is stored (keys are 256-bit random).
CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    company_id uuid        NOT NULL,
    role       text        NOT NULL,
    name       text        NOT NULL,
    prefix     text        NOT NULL,
    key_hash   bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
GRANT SELECT, INSERT, UPDATE ON api_keys TO chargeledger_app;
