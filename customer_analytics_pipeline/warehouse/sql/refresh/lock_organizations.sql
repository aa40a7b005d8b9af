-- Per-organization transaction-scoped advisory locks, taken in ascending key order so
-- that overlapping refreshes queue behind each other instead of deadlocking. The
-- ordered subquery feeds the aggregate row by row, which fixes the locking order.
-- Released at COMMIT or ROLLBACK.
SELECT count(pg_advisory_xact_lock(%(lock_namespace)s::integer, lock_key))
FROM (
    SELECT DISTINCT hashtext(organization_id::text) AS lock_key
    FROM unnest(%(organization_ids)s::uuid[]) AS organization_id
    ORDER BY lock_key
) AS ordered_keys
