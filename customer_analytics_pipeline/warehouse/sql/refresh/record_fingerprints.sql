-- Stores the fingerprints of the customers recomputed in this transaction. Only the
-- changed ones reach the INSERT: ON CONFLICT DO UPDATE locks every conflicting row before
-- its WHERE is tested, so an unchanged fingerprint left to the WHERE costs a row lock, a
-- dirtied page and WAL (a no-op full at 1M clients spent 0.33 s per batch on them).
-- A client deleted meanwhile is skipped, as in the upsert.
INSERT INTO customer_analytics_source_fingerprints AS s (organization_id, square_customer_id, fingerprint)
SELECT f.organization_id, f.square_customer_id, f.fingerprint
FROM refresh_fingerprints AS f
JOIN refresh_targets AS t USING (organization_id, square_customer_id)
WHERE EXISTS (
        SELECT 1 FROM square_existing_clients AS c
        WHERE c.organization_id = f.organization_id AND c.square_customer_id = f.square_customer_id)
  AND NOT EXISTS (
        SELECT 1 FROM customer_analytics_source_fingerprints AS stored
        WHERE stored.organization_id = f.organization_id AND stored.square_customer_id = f.square_customer_id
          AND stored.fingerprint = f.fingerprint)
ON CONFLICT (organization_id, square_customer_id) DO UPDATE
    SET fingerprint = excluded.fingerprint
    WHERE s.fingerprint IS DISTINCT FROM excluded.fingerprint
