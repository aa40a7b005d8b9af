-- The segment mix each organization had at the last evaluation of the
-- segment_distribution check, so the next evaluation can tell a sharp shift.
CREATE TABLE IF NOT EXISTS customer_analytics_segment_snapshots (
    organization_id  uuid        PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    segment_counts   jsonb       NOT NULL,
    evaluated_at     timestamptz NOT NULL
);

COMMENT ON TABLE customer_analytics_segment_snapshots IS
    'Segment counts per organization at the last segment_distribution check evaluation.';
