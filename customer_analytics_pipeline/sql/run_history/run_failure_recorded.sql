-- Whether a failure of this Dagster run is already in application_logs.
SELECT EXISTS (
    SELECT 1 FROM application_logs
    WHERE payload->>'cron_name' = %(cron_name)s
      AND payload->>'dagster_run_id' = %(run_id)s
      AND payload->>'status' = 'failure'
)
