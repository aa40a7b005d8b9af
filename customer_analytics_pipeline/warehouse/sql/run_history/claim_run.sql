-- Claims the run's one outcome row: returns a row only for the first claim of a run.
INSERT INTO customer_analytics_recorded_runs (run_id, status)
VALUES (%(run_id)s, %(status)s)
ON CONFLICT (run_id) DO NOTHING
RETURNING run_id
