-- Client count of every organization of %(organization_ids)s that exists (0 for none),
-- so the nightly full's runs can be balanced by customers, not organizations.
SELECT o.id::text AS organization_id,
       (SELECT count(*) FROM square_existing_clients AS c WHERE c.organization_id = o.id) AS customers
FROM organizations AS o
WHERE o.id = ANY(%(organization_ids)s::uuid[])
