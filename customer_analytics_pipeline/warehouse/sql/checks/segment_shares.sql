-- Each organization's segment counts now, for the shift-since-last-evaluation rule.
SELECT organization_id::text, coalesce(customer_segment, 'NULL') AS segment, count(*) AS customers
FROM customer_analytics
WHERE organization_id = ANY(%(organization_ids)s::uuid[])
GROUP BY organization_id, customer_segment
