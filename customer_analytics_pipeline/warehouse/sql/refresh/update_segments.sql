-- recent mode: every other row of the batch only moves segment for the new as_of.
-- Rows recomputed in this transaction already hold the right segment and are skipped
-- by the guard. Each move is logged to customer_segment_changes (docs/contract.md, Segment movements).
WITH moving AS (
    SELECT organization_id, square_customer_id, customer_segment AS from_segment, to_segment
    FROM customer_analytics,
         LATERAL (SELECT customer_analytics_segment(
             first_booking_at, last_booking_at, %(as_of)s::timestamptz,
             %(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer) AS to_segment) AS segment
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
      AND customer_segment IS DISTINCT FROM to_segment
),
moved AS (
    UPDATE customer_analytics AS ca
    SET customer_segment = m.to_segment, updated_at = now()
    FROM moving AS m
    -- The batch restated on ca: the planner expects most of the batch's rows to move
    -- (it cannot estimate the segment comparison) and hash-joins them; without this it
    -- scanned the whole table for every batch (1M rows, half of the segment pass).
    WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
      AND ca.organization_id = m.organization_id AND ca.square_customer_id = m.square_customer_id
    RETURNING ca.organization_id, ca.square_customer_id, m.from_segment, m.to_segment
),
segment_changes AS (
    INSERT INTO customer_segment_changes
        (organization_id, square_customer_id, from_segment, to_segment, as_of, changed_at)
    SELECT organization_id, square_customer_id, from_segment, to_segment, %(as_of)s::timestamptz, now()
    FROM moved
)
SELECT organization_id::text AS organization_id, count(*) AS updated
FROM moved
GROUP BY organization_id
