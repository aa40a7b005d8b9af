-- The first accepted booking recomputed from bookings with a window function, ties
-- broken on the id's UTF-8 bytes: each customer's bookings ranked accepted first, then
-- by start and id, so that position 1 is the first accepted booking when there is one.
-- Only the audited customers' bookings are ranked (with %(every_row)s, the batch's: the
-- test is then folded away, see README.md, Plans). A customer any of whose bookings
-- changed after the organization's last refresh is left to the next refresh.
WITH ranked_bookings AS (
    SELECT b.organization_id, b.square_customer_id, b.status, b.start_at, b.id, b.location_id,
           row_number() OVER customer AS position,
           max(b.updated_at) OVER customer AS last_changed_at
    FROM bookings AS b
    WHERE b.organization_id = ANY(%(organization_ids)s::uuid[])
      AND b.square_customer_id IS NOT NULL
      AND (%(every_row)s::boolean
           OR (b.organization_id, b.square_customer_id) IN (SELECT organization_id, square_customer_id
                                                            FROM audited_rows))
    -- One window for both functions (row_number ignores the frame): one pass.
    WINDOW customer AS (PARTITION BY b.organization_id, b.square_customer_id
                        ORDER BY b.status = 'ACCEPTED' DESC, b.start_at, convert_to(b.id, 'UTF8')
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
compared AS (
    SELECT ca.*,
           CASE WHEN rb.status = 'ACCEPTED' THEN rb.start_at END AS source_start_at,
           CASE WHEN rb.status = 'ACCEPTED' THEN rb.id END AS source_id,
           CASE WHEN rb.status = 'ACCEPTED' THEN rb.location_id END AS source_location_id
    FROM audited_rows AS ca
    LEFT JOIN (SELECT * FROM ranked_bookings WHERE position = 1) AS rb
           ON rb.organization_id = ca.organization_id AND rb.square_customer_id = ca.square_customer_id
    LEFT JOIN (SELECT * FROM customer_analytics_refresh_state
               WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS s
           ON s.organization_id = ca.organization_id
    WHERE (rb.last_changed_at > coalesce(s.last_refreshed_at, 'infinity')) IS NOT TRUE
)
SELECT organization_id, square_customer_id,
       format('first booking is (%%s, %%s, %%s), bookings give (%%s, %%s, %%s)',
              coalesce(first_booking_at::text, 'NULL'), coalesce(first_booking_id, 'NULL'),
              coalesce(first_booking_location_id, 'NULL'), coalesce(source_start_at::text, 'NULL'),
              coalesce(source_id, 'NULL'), coalesce(source_location_id, 'NULL')) AS problem,
       email_address, phone_number
FROM compared
WHERE (first_booking_at, first_booking_id, first_booking_location_id)
      IS DISTINCT FROM (source_start_at, source_id, source_location_id)
