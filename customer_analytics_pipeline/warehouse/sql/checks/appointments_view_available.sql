-- Per organization, the view's new_customers sum against the customers with a first
-- booking in customer_analytics.
WITH view_totals AS (
    SELECT organization_id, sum(new_customers) AS new_customers
    FROM analytics_appointments_by_location_daily
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
    GROUP BY organization_id
),
customer_totals AS (
    SELECT organization_id, count(first_booking_at) AS with_first_booking
    FROM customer_analytics
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
    GROUP BY organization_id
)
SELECT organization_id, NULL::text AS square_customer_id,
       format('view new_customers sum is %%s, customers with a first booking %%s',
              coalesce(v.new_customers, 0), coalesce(c.with_first_booking, 0)) AS problem,
       NULL::text AS email_address, NULL::text AS phone_number
FROM customer_totals AS c
FULL JOIN view_totals AS v USING (organization_id)
WHERE coalesce(v.new_customers, 0) <> coalesce(c.with_first_booking, 0)
