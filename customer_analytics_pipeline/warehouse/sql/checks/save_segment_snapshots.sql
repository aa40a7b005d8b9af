-- Remembers each checked organization's segment counts for the next evaluation.
INSERT INTO customer_analytics_segment_snapshots AS s (organization_id, segment_counts, evaluated_at)
SELECT o.id, coalesce(%(segment_counts)s::jsonb -> o.id::text, '{}'::jsonb), now()
FROM organizations AS o
WHERE o.id = ANY(%(organization_ids)s::uuid[])
ON CONFLICT (organization_id) DO UPDATE
    SET segment_counts = excluded.segment_counts, evaluated_at = excluded.evaluated_at
