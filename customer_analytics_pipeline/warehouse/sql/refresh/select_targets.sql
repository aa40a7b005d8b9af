-- Every client of the batch's organizations, in both modes: `full` recomputes them all;
-- `recent` first drops the ones its proof shows unchanged (skip_unchanged_targets.sql).
CREATE TEMP TABLE refresh_targets ON COMMIT DROP AS
SELECT organization_id, square_customer_id
FROM square_existing_clients
WHERE organization_id = ANY(%(organization_ids)s::uuid[])
