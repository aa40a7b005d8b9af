-- The segment movements this transaction logged for the batch, for the run's metadata:
-- exactly this refresh's change rows, written with changed_at = now(), the transaction's
-- start, which the caller read in the same transaction and binds as %(refreshed_at)s.
-- Not now() here: on Citus (docs/citus.md) a SELECT's now() is evaluated in the shards'
-- queries on each worker, whose transactions started later than the coordinator's,
-- whose now() the writes used.
SELECT from_segment, to_segment, count(*) AS customers
FROM customer_segment_changes
WHERE organization_id = ANY(%(organization_ids)s::uuid[])
  AND changed_at = %(refreshed_at)s::timestamptz
GROUP BY from_segment, to_segment
ORDER BY from_segment NULLS FIRST, to_segment
