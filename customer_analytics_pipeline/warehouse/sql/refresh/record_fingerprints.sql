-- Stores the fingerprints of the customers recomputed in this transaction (only the
-- changed ones are written). A client deleted meanwhile is skipped, as in the upsert.
INSERT INTO customer_analytics_source_fingerprints AS s (organization_id, square_customer_id, fingerprint)
SELECT f.organization_id, f.square_customer_id, f.fingerprint
FROM refresh_fingerprints AS f
JOIN refresh_targets AS t USING (organization_id, square_customer_id)
WHERE EXISTS (
        SELECT 1 FROM square_existing_clients AS c
        WHERE c.organization_id = f.organization_id AND c.square_customer_id = f.square_customer_id)
ON CONFLICT (organization_id, square_customer_id) DO UPDATE
    SET fingerprint = excluded.fingerprint
    WHERE s.fingerprint IS DISTINCT FROM excluded.fingerprint
