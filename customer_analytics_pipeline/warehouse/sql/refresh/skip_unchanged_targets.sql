-- recent mode: removes from refresh_targets every customer that has a row and a stored
-- fingerprint equal to the one just taken: none of its source rows was inserted,
-- updated, deleted or moved since the row was computed, so recomputing it would give
-- the same row. A customer without a row, or whose stored fingerprint is missing (a row
-- computed before fingerprints existed, a lost fingerprint row), stays and is
-- recomputed. The rows kept still get the segment pass.
-- The pipeline's tables are read in a CTE filtered by the batch, with no correlated
-- subquery: on Citus (docs/citus.md), where they are distributed and refresh_targets is
-- a temporary table, a DELETE cannot join them directly, and Citus plans the CTE on its
-- own (the batch's stored fingerprints brought to the coordinator). MATERIALIZED makes
-- PostgreSQL do the same: inlined, the pair-of-columns semi-join was misestimated and
-- the DELETE took 4-5 s at 20,000 organizations whatever the batch's size.
WITH stored AS MATERIALIZED (
    SELECT s.organization_id, s.square_customer_id, s.fingerprint
    FROM customer_analytics_source_fingerprints AS s
    WHERE s.organization_id = ANY(%(organization_ids)s::uuid[])
      AND (s.organization_id, s.square_customer_id) IN (
            SELECT ca.organization_id, ca.square_customer_id
            FROM customer_analytics AS ca
            WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[]))
)
DELETE FROM refresh_targets AS t
USING refresh_fingerprints AS f, stored AS s
WHERE f.organization_id = t.organization_id AND f.square_customer_id = t.square_customer_id
  AND s.organization_id = t.organization_id AND s.square_customer_id = t.square_customer_id
  AND s.fingerprint = f.fingerprint
