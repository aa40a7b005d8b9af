-- recent mode: every other row of the batch only moves segment for the new as_of.
-- Rows recomputed in this transaction already hold the right segment and are skipped
-- by the guard.
WITH moved AS (
    UPDATE customer_analytics AS ca
    SET customer_segment = customer_analytics_segment(
            ca.first_booking_at, ca.last_booking_at, %(as_of)s::timestamptz,
            %(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer),
        updated_at = now()
    WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
      AND ca.customer_segment IS DISTINCT FROM customer_analytics_segment(
            ca.first_booking_at, ca.last_booking_at, %(as_of)s::timestamptz,
            %(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer)
    RETURNING ca.organization_id
)
SELECT organization_id::text AS organization_id, count(*) AS updated
FROM moved
GROUP BY organization_id
