-- Rule 6 of issue 10: every terminal has an OCPP security profile (0 no
-- credentials, 1 HTTP Basic, 2 TLS and HTTP Basic), shown by the API. Terminals
-- registered before were profile 0 without a password and profile 1 with one,
-- which is what their `terminal.registered` events imply.
ALTER TABLE rm_terminals.terminals ADD COLUMN security_profile smallint;
UPDATE rm_terminals.terminals SET security_profile = CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END;
ALTER TABLE rm_terminals.terminals ALTER COLUMN security_profile SET NOT NULL;
