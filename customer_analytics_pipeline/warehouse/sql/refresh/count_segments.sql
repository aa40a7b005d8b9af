-- Segment distribution of the batch after the refresh, for the run's metadata.
SELECT customer_segment, count(*) AS customers
FROM customer_analytics
WHERE organization_id = ANY(%(organization_ids)s::uuid[])
GROUP BY customer_segment
ORDER BY customer_segment
