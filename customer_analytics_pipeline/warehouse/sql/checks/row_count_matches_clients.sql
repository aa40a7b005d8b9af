-- Exactly one customer_analytics row per client: missing rows and rows without a client.
-- Every client of the organizations is looked for, whatever the audit's scope: a
-- missing row carries no stamp to be audited by (keys only, so this stays cheap).
SELECT c.organization_id, c.square_customer_id,
       'client has no customer_analytics row' AS problem,
       c.email_address, c.phone_number
FROM square_existing_clients AS c
LEFT JOIN customer_analytics_refresh_state AS s ON s.organization_id = c.organization_id
WHERE c.organization_id = ANY(%(organization_ids)s::uuid[])
  AND c.updated_at <= coalesce(s.last_refreshed_at, 'infinity')
  AND NOT EXISTS (
        SELECT 1 FROM customer_analytics AS ca
        -- The batch restated on ca (and on c below): a hashed anti-join then reads the
        -- batch's rows, not the whole table.
        WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
          AND ca.organization_id = c.organization_id AND ca.square_customer_id = c.square_customer_id)
UNION ALL
SELECT ca.organization_id, ca.square_customer_id,
       'customer_analytics row has no client' AS problem,
       ca.email_address, ca.phone_number
FROM audited_rows AS ca
LEFT JOIN (SELECT organization_id, square_customer_id FROM square_existing_clients
           WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS c
       ON c.organization_id = ca.organization_id AND c.square_customer_id = ca.square_customer_id
WHERE c.square_customer_id IS NULL
