-- Stored responses may be problems (a declined payment, a charger's refusal):
-- replay them with their own content type.
ALTER TABLE idempotent_responses ADD COLUMN content_type text NOT NULL DEFAULT 'application/json';
