-- Whether this Dagster run already has its row in application_logs (one row per batch).
SELECT EXISTS (
    SELECT 1 FROM application_logs
    WHERE payload->>'cron_name' = %(cron_name)s
      AND payload->>'dagster_run_id' = %(run_id)s
)
