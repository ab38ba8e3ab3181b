-- Idempotency keys are scoped to (company, caller): another caller of the
-- company using the same key gets its own execution (ADR 0015). Rows from
-- before this migration belong to no caller ('') and so are never replayed.
ALTER TABLE idempotent_responses ADD COLUMN caller text NOT NULL DEFAULT '';
-- The process that holds an in-flight claim (status 0): it holds the advisory
-- lock (20051011, instance) while it lives. NULL on older rows.
ALTER TABLE idempotent_responses ADD COLUMN instance integer;
ALTER TABLE idempotent_responses DROP CONSTRAINT idempotent_responses_pkey;
ALTER TABLE idempotent_responses ADD PRIMARY KEY (company_id, caller, key);
-- Expiry and pruning go by age.
CREATE INDEX idempotent_responses_created_at ON idempotent_responses (created_at);

-- A claim whose process is gone: no session holds its liveness lock any more.
CREATE FUNCTION idempotency_claim_abandoned(instance integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT instance IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid::text::bigint = 20051011 AND objid::text::bigint = instance
    )
$$;

-- The application claims, completes, releases and prunes rows here.
GRANT UPDATE, DELETE ON idempotent_responses TO chargeledger_app;
