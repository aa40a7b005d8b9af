-- One row per refresh batch in the application's log, as its admin page reads it
-- (payload->>'cron_name' = 'refresh-customer-analytics').
INSERT INTO application_logs (level, message, payload)
VALUES (%(level)s, %(message)s, %(payload)s::jsonb)
