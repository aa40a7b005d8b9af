-- The first accepted booking recomputed from bookings with a window function, ties
-- broken on the id's UTF-8 bytes: each audited customer's bookings ranked accepted
-- first, then by start and id, so that position 1 is the first accepted booking when
-- there is one. A customer any of whose bookings changed after the organization's last
-- refresh is left to the next refresh. The refresh state is joined after the ranking,
-- so that the ranking's sort can start from the join's order (customer by customer).
WITH ranked_bookings AS (
    SELECT ca.organization_id, ca.square_customer_id, ca.email_address, ca.phone_number,
           ca.first_booking_at, ca.first_booking_id, ca.first_booking_location_id,
           b.status, b.start_at, b.id, b.location_id,
           row_number() OVER customer AS position,
           max(b.updated_at) OVER customer AS last_changed_at
    FROM audited_rows AS ca
    LEFT JOIN (SELECT * FROM bookings WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS b
           ON b.organization_id = ca.organization_id AND b.square_customer_id = ca.square_customer_id
    -- One window for both functions (the frame is the whole customer, which row_number
    -- ignores), so one pass over the sorted rows.
    WINDOW customer AS (PARTITION BY ca.organization_id, ca.square_customer_id
                        ORDER BY b.status IS NOT DISTINCT FROM 'ACCEPTED' DESC, b.start_at, convert_to(b.id, 'UTF8')
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
compared AS (
    SELECT rb.organization_id, rb.square_customer_id, rb.email_address, rb.phone_number,
           rb.first_booking_at, rb.first_booking_id, rb.first_booking_location_id,
           CASE WHEN rb.status = 'ACCEPTED' THEN rb.start_at END AS source_start_at,
           CASE WHEN rb.status = 'ACCEPTED' THEN rb.id END AS source_id,
           CASE WHEN rb.status = 'ACCEPTED' THEN rb.location_id END AS source_location_id
    FROM ranked_bookings AS rb
    LEFT JOIN (SELECT * FROM customer_analytics_refresh_state
               WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS s
           ON s.organization_id = rb.organization_id
    WHERE rb.position = 1
      AND (rb.last_changed_at > coalesce(s.last_refreshed_at, 'infinity')) IS NOT TRUE
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
