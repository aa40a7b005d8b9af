-- recent mode: removes from refresh_targets every customer that has a row and a stored
-- fingerprint equal to the one just taken: none of its source rows was inserted,
-- updated, deleted or moved since the row was computed, so recomputing it would give
-- the same row. A customer without a row, or whose stored fingerprint is missing (a row
-- computed before fingerprints existed, a lost fingerprint row), stays and is
-- recomputed. The rows kept still get the segment pass.
DELETE FROM refresh_targets AS t
USING refresh_fingerprints AS f, customer_analytics_source_fingerprints AS s
WHERE f.organization_id = t.organization_id AND f.square_customer_id = t.square_customer_id
  AND s.organization_id = t.organization_id AND s.square_customer_id = t.square_customer_id
  AND s.fingerprint = f.fingerprint
  AND EXISTS (
        SELECT 1 FROM customer_analytics AS ca
        WHERE ca.organization_id = t.organization_id AND ca.square_customer_id = t.square_customer_id)
