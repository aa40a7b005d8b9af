-- customer_segment_changes (docs/contract.md, Segment movements): one row each time a refresh changes a
-- customer's customer_segment, its first segment included (from_segment NULL). Written
-- in the refresh's transaction by the statements that write the segment, so the rows of
-- a customer in changed_at order are the segments its row held after each refresh.
-- Goes with the client (cascade); rows older than CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS
-- are deleted by full runs.
CREATE TABLE IF NOT EXISTS customer_segment_changes (
    organization_id     uuid        NOT NULL,
    square_customer_id  text        NOT NULL,
    from_segment        text,
    to_segment          text        NOT NULL,
    as_of               timestamptz NOT NULL,
    changed_at          timestamptz NOT NULL,
    -- One refresh transaction changes a customer's segment at most once; the key also
    -- serves the cascade from square_existing_clients and a customer's history.
    CONSTRAINT customer_segment_changes_pkey PRIMARY KEY (organization_id, square_customer_id, changed_at),
    CONSTRAINT customer_segment_changes_client_fkey
        FOREIGN KEY (organization_id, square_customer_id)
        REFERENCES square_existing_clients (organization_id, square_customer_id)
        ON DELETE CASCADE,
    CONSTRAINT customer_segment_changes_is_a_change CHECK (from_segment IS DISTINCT FROM to_segment)
);

-- An organization's movements over time: the weekly view filtered by organization, the
-- run's own movements (changed_at = now()) and retention per organization.
CREATE INDEX IF NOT EXISTS customer_segment_changes_org_changed_idx
    ON customer_segment_changes (organization_id, changed_at);

COMMENT ON TABLE customer_segment_changes IS
    'One row per change of a customer''s customer_segment written by a refresh (first segment: from_segment NULL). Owned by the customer_analytics Dagster assets.';
COMMENT ON COLUMN customer_segment_changes.from_segment IS 'Segment before the refresh; NULL when the customer had no customer_analytics row.';
COMMENT ON COLUMN customer_segment_changes.to_segment IS 'Segment the refresh wrote.';
COMMENT ON COLUMN customer_segment_changes.as_of IS 'as_of of the refresh that wrote it.';
COMMENT ON COLUMN customer_segment_changes.changed_at IS 'now() of the refresh transaction.';

-- Movements per organization and ISO week (Monday start, UTC). The organization is a
-- grouping column, so a dashboard's organization filter is pushed below the GROUP BY
-- to customer_segment_changes_org_changed_idx.
CREATE OR REPLACE VIEW analytics_segment_movements_weekly AS
SELECT organization_id,
       date_trunc('week', changed_at AT TIME ZONE 'UTC')::date AS week,
       from_segment,
       to_segment,
       count(DISTINCT square_customer_id) AS customers
FROM customer_segment_changes
GROUP BY organization_id, date_trunc('week', changed_at AT TIME ZONE 'UTC')::date, from_segment, to_segment;

COMMENT ON VIEW analytics_segment_movements_weekly IS
    'Per organization, ISO week (UTC, Monday) of changed_at and segment movement: distinct customers with such a change.';
