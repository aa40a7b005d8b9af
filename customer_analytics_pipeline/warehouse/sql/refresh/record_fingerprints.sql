-- Stores the fingerprints of the customers recomputed in this transaction. Only the
-- changed ones reach the INSERT: ON CONFLICT DO UPDATE locks every conflicting row before
-- its WHERE is tested, so an unchanged fingerprint left to the WHERE costs a row lock, a
-- dirtied page and WAL (a no-op full at 1M clients spent 0.33 s per batch on them).
-- A client deleted meanwhile is skipped, as in the upsert.
-- Citus (docs/citus.md): the batch's clients and stored fingerprints are CTEs filtered
-- by the batch, with no correlated subquery (Citus cannot correlate a distributed table
-- with the temporary tables here). MATERIALIZED makes PostgreSQL read each once by the
-- batch filter too: inlined, the misestimated pair-of-columns joins took 8-15 s per
-- batch of a nightly at 20,000 organizations.
WITH batch_clients AS MATERIALIZED (
    SELECT organization_id, square_customer_id
    FROM square_existing_clients
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
),
stored AS MATERIALIZED (
    SELECT organization_id, square_customer_id, fingerprint
    FROM customer_analytics_source_fingerprints
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
)
INSERT INTO customer_analytics_source_fingerprints AS s (organization_id, square_customer_id, fingerprint)
SELECT f.organization_id, f.square_customer_id, f.fingerprint
FROM refresh_fingerprints AS f
JOIN refresh_targets AS t USING (organization_id, square_customer_id)
LEFT JOIN stored USING (organization_id, square_customer_id, fingerprint)
WHERE stored.organization_id IS NULL
  AND (f.organization_id, f.square_customer_id) IN (
        SELECT c.organization_id, c.square_customer_id FROM batch_clients AS c)
ON CONFLICT (organization_id, square_customer_id) DO UPDATE
    SET fingerprint = excluded.fingerprint
    WHERE s.fingerprint IS DISTINCT FROM excluded.fingerprint
