-- Records, per organization of the batch, the refresh and the row count it left, and
-- returns the row count the previous refresh had left (NULL for a first refresh) so
-- rows removed in between (clients deleted, cascading) can be reported.
WITH batch AS (
    SELECT o.id AS organization_id,
           (SELECT count(*) FROM customer_analytics AS ca
            WHERE ca.organization_id = o.id) AS row_count
    FROM organizations AS o
    WHERE o.id = ANY(%(organization_ids)s::uuid[])
),
previous AS (
    SELECT s.organization_id, s.row_count
    FROM customer_analytics_refresh_state AS s
    WHERE s.organization_id = ANY(%(organization_ids)s::uuid[])
),
recorded AS (
    INSERT INTO customer_analytics_refresh_state AS s
        (organization_id, last_refreshed_at, mode, as_of, row_count)
    SELECT organization_id, now(), %(mode)s::text, %(as_of)s::timestamptz, row_count
    FROM batch
    ON CONFLICT (organization_id) DO UPDATE
        SET last_refreshed_at = excluded.last_refreshed_at,
            mode = excluded.mode,
            as_of = excluded.as_of,
            row_count = excluded.row_count
)
SELECT b.organization_id::text AS organization_id,
       b.row_count,
       p.row_count AS previous_row_count
FROM batch AS b
LEFT JOIN previous AS p USING (organization_id)
ORDER BY b.organization_id
