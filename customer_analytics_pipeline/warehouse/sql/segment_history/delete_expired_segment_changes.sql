-- One batch of retention: at most batch_size change rows of these organizations
-- older than keep_days days (exact days of 86,400 s), by physical address so each
-- batch is one short index range scan plus a TID scan. (No FOR UPDATE: that would need
-- the UPDATE privilege; a row deleted meanwhile by a client's cascade is simply gone.)
DELETE FROM customer_segment_changes
WHERE ctid = ANY (ARRAY(
    SELECT ctid
    FROM customer_segment_changes
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
      AND changed_at < now() - make_interval(secs => %(keep_days)s::integer * 86400.0)
    LIMIT %(batch_size)s::integer
))
