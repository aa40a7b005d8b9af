-- full mode: every client of the batch's organizations is recomputed.
CREATE TEMP TABLE refresh_targets ON COMMIT DROP AS
SELECT organization_id, square_customer_id
FROM square_existing_clients
WHERE organization_id = ANY(%(organization_ids)s::uuid[])
