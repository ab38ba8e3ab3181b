-- Who a charge session belongs to (charge_session.started v2 `customerId`):
-- drivers list only their own sessions. Sessions started before it have none.
ALTER TABLE rm_sessions.sessions ADD COLUMN customer_id text;
CREATE INDEX sessions_customer_idx ON rm_sessions.sessions (company_id, customer_id, started_at DESC, id);
-- Drivers list only their own payment intents.
CREATE INDEX IF NOT EXISTS intents_customer_idx ON rm_payments.intents (company_id, customer_id, created_at DESC, id);
