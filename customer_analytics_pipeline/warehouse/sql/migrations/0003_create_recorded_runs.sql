-- The runs that already have their row in application_logs, so a retried attempt or
-- the run-failure sensor never adds a second one. Kept in the pipeline's own table: the
-- runtime role only appends to application_logs and never needs to read it.
CREATE TABLE IF NOT EXISTS customer_analytics_recorded_runs (
    run_id       text        PRIMARY KEY,
    status       text        NOT NULL CHECK (status IN ('success', 'failure')),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE customer_analytics_recorded_runs IS
    'Runs (Dagster run ids, or cli:<uuid>) whose refresh outcome is recorded in application_logs.';
