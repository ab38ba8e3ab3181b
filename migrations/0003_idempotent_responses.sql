-- Responses to requests that carried an Idempotency-Key: a retry with the same
-- key and body gets the stored response; another body under the same key is a 422.
-- The command itself is deduplicated in command_log, inside the log transaction.
CREATE TABLE idempotent_responses (
    company_id   uuid        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       smallint    NOT NULL,
    location     text,
    body         text        NOT NULL, -- the exact bytes sent the first time
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, key)
);
GRANT SELECT, INSERT ON idempotent_responses TO chargeledger_app;
