-- One batch of retention: at most batch_size change rows of these organizations
-- older than keep_days days (exact days of 86,400 s). The batch is picked on the index
-- (organization_id, changed_at) and deleted by its primary key (organization_id,
-- square_customer_id, changed_at). Not by ctid: a physical address means nothing across
-- the shards of a Citus table (docs/citus.md), which plans the LIMIT subquery on its own
-- and then deletes those keys in each shard. (No FOR UPDATE: that would need the UPDATE
-- privilege; a row deleted meanwhile by a client's cascade is simply gone.)
DELETE FROM customer_segment_changes AS expired
WHERE expired.organization_id = ANY(%(organization_ids)s::uuid[])
  AND (expired.organization_id, expired.square_customer_id, expired.changed_at) IN (
        SELECT c.organization_id, c.square_customer_id, c.changed_at
        FROM customer_segment_changes AS c
        WHERE c.organization_id = ANY(%(organization_ids)s::uuid[])
          AND c.changed_at < now() - make_interval(secs => %(keep_days)s::integer * 86400.0)
        LIMIT %(batch_size)s::integer)
