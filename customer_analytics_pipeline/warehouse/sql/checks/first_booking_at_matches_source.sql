-- The first accepted booking recomputed from bookings with a window function, ties
-- broken on the id's UTF-8 bytes.
WITH ranked_bookings AS (
    SELECT b.organization_id, b.square_customer_id, b.start_at, b.id, b.location_id,
           row_number() OVER (PARTITION BY b.organization_id, b.square_customer_id
                              ORDER BY b.start_at, convert_to(b.id, 'UTF8')) AS position
    FROM bookings AS b
    WHERE b.organization_id = ANY(%(organization_ids)s::uuid[])
      AND b.status = 'ACCEPTED'
      AND b.square_customer_id IS NOT NULL
),
compared AS (
    SELECT ca.*, rb.start_at AS source_start_at, rb.id AS source_id, rb.location_id AS source_location_id
    FROM audited_rows AS ca
    LEFT JOIN ranked_bookings AS rb
           ON rb.organization_id = ca.organization_id AND rb.square_customer_id = ca.square_customer_id
          AND rb.position = 1
    LEFT JOIN customer_analytics_refresh_state AS s ON s.organization_id = ca.organization_id
    WHERE NOT EXISTS (
            SELECT 1 FROM bookings AS b
            -- The batch restated on b: a hashed anti-join then reads the batch's rows, not the table.
            WHERE b.organization_id = ANY(%(organization_ids)s::uuid[])
              AND b.organization_id = ca.organization_id AND b.square_customer_id = ca.square_customer_id
              AND b.updated_at > coalesce(s.last_refreshed_at, 'infinity'))
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
