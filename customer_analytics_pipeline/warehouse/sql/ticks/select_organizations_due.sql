-- The hourly tick's selection, one statement (one snapshot) over every organization of
-- %(organization_ids)s: which need a `recent` refresh at %(as_of)s, and why; the others
-- are proven current and recorded as verified at this tick.
-- An organization is current when its last refresh left a proof (source_fingerprint),
-- the XOR of the hashes of all its source row versions still equals that proof (no row
-- inserted, updated, deleted or moved since; the refresh took it before computing), the
-- day counts are the tick's, and the tick's as_of lies between the last refresh's as_of
-- and the last instant at which every customer keeps its segment.
-- Returns every organization of the list that exists: its client count (to balance
-- runs by size) and reason, NULL when verified.
-- source_state is MATERIALIZED: on Citus (docs/citus.md) it is then planned on its own,
-- one aggregate per shard group pushed down to the workers; inlined into the statement
-- with the UPDATE, Citus planned each arm of the view's UNION ALL separately and pulled
-- every source row to the coordinator (46 s instead of 2 at 250,000 clients).
-- PostgreSQL reads it once either way.
WITH source_state AS MATERIALIZED (
    SELECT v.organization_id,
           bit_xor(hashtextextended(v.row_version, %(seed)s::bigint)) AS fingerprint,
           count(*) FILTER (WHERE starts_with(v.row_version, 'c/')) AS customers
    FROM customer_analytics_source_row_versions AS v
    WHERE v.organization_id = ANY(%(organization_ids)s::uuid[])
    GROUP BY v.organization_id
),
decided AS (
    SELECT o.id AS organization_id,
           coalesce(src.customers, 0) AS customers,
           CASE
               WHEN s.source_fingerprint IS NULL THEN 'never refreshed with a proof'
               WHEN s.source_fingerprint <> coalesce(src.fingerprint, 0) THEN 'source rows changed'
               WHEN (s.new_days, s.active_days, s.at_risk_days)
                    IS DISTINCT FROM (%(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer)
                   THEN 'day counts changed'
               WHEN %(as_of)s::timestamptz < s.as_of THEN 'as_of before the last refresh'
               WHEN %(as_of)s::timestamptz > s.segments_valid_until THEN 'segment change due'
           END AS reason
    FROM organizations AS o
    LEFT JOIN customer_analytics_refresh_state AS s ON s.organization_id = o.id
    LEFT JOIN source_state AS src ON src.organization_id = o.id
    WHERE o.id = ANY(%(organization_ids)s::uuid[])
),
verified AS (
    UPDATE customer_analytics_refresh_state AS s
    SET verified_at = now(), verified_as_of = %(as_of)s::timestamptz
    FROM decided AS d
    WHERE d.reason IS NULL AND s.organization_id = d.organization_id
)
SELECT organization_id::text AS organization_id, customers, reason
FROM decided
