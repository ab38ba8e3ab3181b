-- Webhook delivery leases: a worker takes one before an attempt and holds it
-- for the attempt's timeout, without holding a database connection meanwhile.
CREATE TABLE webhook_leases (
    delivery_id uuid        PRIMARY KEY,
    holder      uuid        NOT NULL,
    until       timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_leases TO chargeledger_app;
