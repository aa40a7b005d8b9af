-- The segment counts of the previous evaluation, per organization.
SELECT organization_id::text, segment_counts
FROM customer_analytics_segment_snapshots
WHERE organization_id = ANY(%(organization_ids)s::uuid[])
