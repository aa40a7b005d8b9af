-- Records, per organization of the batch, the refresh, the row count it left and what
-- proves those rows current until the source changes or time moves a segment: the XOR
-- of every fingerprint group of the organization (the hourly tick's
-- select_organizations_due.sql takes the same XOR straight from the source), the day
-- counts, and the last instant at which every customer keeps the segment just written.
-- Returns the row count the previous refresh had left (NULL for a first refresh) so rows
-- removed in between (clients deleted, cascading) can be reported.
WITH batch AS (
    SELECT o.id AS organization_id, rows.row_count, rows.segments_valid_until,
           coalesce((SELECT bit_xor(f.fingerprint) FROM refresh_fingerprints AS f
                     WHERE f.organization_id = o.id), 0) AS source_fingerprint
    FROM organizations AS o
    CROSS JOIN LATERAL (
        SELECT count(*) AS row_count,
               coalesce(min(customer_analytics_segment_valid_until(
                   ca.customer_segment, ca.first_booking_at, ca.last_booking_at,
                   %(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer)),
                   'infinity'::timestamptz) AS segments_valid_until
        FROM customer_analytics AS ca
        WHERE ca.organization_id = o.id
    ) AS rows
    WHERE o.id = ANY(%(organization_ids)s::uuid[])
),
previous AS (
    SELECT s.organization_id, s.row_count
    FROM customer_analytics_refresh_state AS s
    WHERE s.organization_id = ANY(%(organization_ids)s::uuid[])
),
recorded AS (
    INSERT INTO customer_analytics_refresh_state AS s
        (organization_id, last_refreshed_at, mode, as_of, row_count, source_fingerprint,
         new_days, active_days, at_risk_days, segments_valid_until)
    SELECT organization_id, now(), %(mode)s::text, %(as_of)s::timestamptz, row_count, source_fingerprint,
           %(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer, segments_valid_until
    FROM batch
    ON CONFLICT (organization_id) DO UPDATE
        SET last_refreshed_at = excluded.last_refreshed_at,
            mode = excluded.mode,
            as_of = excluded.as_of,
            row_count = excluded.row_count,
            source_fingerprint = excluded.source_fingerprint,
            new_days = excluded.new_days,
            active_days = excluded.active_days,
            at_risk_days = excluded.at_risk_days,
            segments_valid_until = excluded.segments_valid_until
)
SELECT b.organization_id::text AS organization_id,
       b.row_count,
       p.row_count AS previous_row_count
FROM batch AS b
LEFT JOIN previous AS p USING (organization_id)
ORDER BY b.organization_id
