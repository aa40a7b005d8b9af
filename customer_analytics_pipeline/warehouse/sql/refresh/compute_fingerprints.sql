-- The source fingerprint of every customer of the batch's organizations: the XOR of a
-- 64-bit hash of each of its rows in customer_analytics_source_row_versions (its client,
-- referral, booking and payment rows, each named with its row version). Every insert,
-- update, delete or move of one of those rows changes it. %(seed)s comes from the
-- refresh's code version, so new refresh SQL invalidates every fingerprint. Run before
-- the metrics are computed: the metrics then see at least the rows fingerprinted (a
-- later change only makes the next refresh recompute).
-- Groups of unknown customers (no client row, or NULL) are kept: the steps that use a
-- customer's fingerprint join refresh_targets (clients only), and
-- record_refresh_state.sql XORs every group of an organization into its proof.
-- There is no join tree over customers, so the planner's estimate of a join on the key
-- pair (it multiplies the selectivities of the two correlated columns and finds a few
-- dozen rows where there are tens of thousands) cannot turn into nested loops over
-- per-customer aggregates: the aggregate's input is estimated from the source tables'
-- own statistics, and hashed.
CREATE TEMP TABLE refresh_fingerprints ON COMMIT DROP AS
SELECT v.organization_id, v.square_customer_id,
       bit_xor(hashtextextended(v.row_version, %(seed)s::bigint)) AS fingerprint
FROM customer_analytics_source_row_versions AS v
WHERE v.organization_id = ANY(%(organization_ids)s::uuid[])
GROUP BY v.organization_id, v.square_customer_id
