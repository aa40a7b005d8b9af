-- Records, per organization of the batch, the refresh, the row count it left and what
-- proves those rows current until the source changes or time moves a segment: the XOR
-- of every fingerprint group of the organization (the hourly tick's
-- select_organizations_due.sql takes the same XOR straight from the source), the day
-- counts, and the last instant at which every customer keeps the segment just written.
-- Returns the row count the previous refresh had left (NULL for a first refresh) so rows
-- removed in between (clients deleted, cascading) can be reported, and the previous
-- refresh's as_of, from which the audit's sample of unchanged rows runs.
-- Citus (docs/citus.md): the organization's rows and proof are aggregated by
-- organization in CTEs and left-joined to organizations, not read by correlated
-- subqueries: the proof comes from refresh_fingerprints, a temporary table, which Citus
-- cannot join to a distributed table inside a correlated subquery. The previous row
-- count is read in `batch`, which both the INSERT and the final SELECT read: Citus
-- runs the CTEs as separate steps, and a CTE read only by the final SELECT would run
-- after the INSERT and see its row count.
WITH batch_proofs AS (
    SELECT f.organization_id, bit_xor(f.fingerprint) AS source_fingerprint
    FROM refresh_fingerprints AS f
    GROUP BY f.organization_id
),
batch_rows AS (
    SELECT ca.organization_id,
           count(*) AS row_count,
           min(customer_analytics_segment_valid_until(
               ca.customer_segment, ca.first_booking_at, ca.last_booking_at,
               %(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer)) AS segments_valid_until
    FROM customer_analytics AS ca
    WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
    GROUP BY ca.organization_id
),
batch AS (
    SELECT o.id AS organization_id,
           coalesce(r.row_count, 0) AS row_count,
           coalesce(r.segments_valid_until, 'infinity'::timestamptz) AS segments_valid_until,
           coalesce(p.source_fingerprint, 0) AS source_fingerprint,
           previous.row_count AS previous_row_count,
           previous.as_of AS previous_as_of
    FROM organizations AS o
    LEFT JOIN batch_rows AS r ON r.organization_id = o.id
    LEFT JOIN batch_proofs AS p ON p.organization_id = o.id
    LEFT JOIN customer_analytics_refresh_state AS previous ON previous.organization_id = o.id
    WHERE o.id = ANY(%(organization_ids)s::uuid[])
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
SELECT organization_id::text AS organization_id, row_count, previous_row_count, previous_as_of
FROM batch
ORDER BY organization_id
