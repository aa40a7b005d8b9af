-- The segment movements this transaction logged for the batch, for the run's metadata
-- (now() is the transaction's start: exactly this refresh's change rows).
SELECT from_segment, to_segment, count(*) AS customers
FROM customer_segment_changes
WHERE organization_id = ANY(%(organization_ids)s::uuid[])
  AND changed_at = now()
GROUP BY from_segment, to_segment
ORDER BY from_segment NULLS FIRST, to_segment
