-- Appointments per organization, location and local day (SPEC section 3).
-- day: the local date of start_at in the location's time zone; the UTC date when the
-- location has no locations row or its timezone is NULL or not an exact IANA zone
-- name (matched case-sensitively against pg_timezone_names: AT TIME ZONE alone would
-- accept 'america/new_york' and abbreviations).
-- new_customers comes from customer_analytics's first accepted booking, so each
-- customer is new exactly once, at that booking's location and local day.
CREATE VIEW analytics_appointments_by_location_daily AS
WITH location_zones AS (
    SELECT l.organization_id, l.square_location_id AS location_id, z.name AS zone
    FROM locations AS l
    JOIN pg_timezone_names AS z ON z.name = l.timezone
),
booking_days AS (
    SELECT b.organization_id,
           b.location_id,
           b.status,
           c.square_customer_id AS client_id,  -- NULL unless the customer is a known client
           (b.start_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date AS day
    FROM bookings AS b
    LEFT JOIN location_zones AS lz
           ON lz.organization_id = b.organization_id AND lz.location_id = b.location_id
    LEFT JOIN square_existing_clients AS c
           ON c.organization_id = b.organization_id AND c.square_customer_id = b.square_customer_id
),
first_visits AS (
    SELECT ca.organization_id,
           ca.first_booking_location_id AS location_id,
           (ca.first_booking_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date AS day,
           ca.square_customer_id
    FROM customer_analytics AS ca
    LEFT JOIN location_zones AS lz
           ON lz.organization_id = ca.organization_id AND lz.location_id = ca.first_booking_location_id
    WHERE ca.first_booking_at IS NOT NULL
),
new_customer_counts AS (
    SELECT organization_id, location_id, day, count(*) AS new_customers
    FROM first_visits
    GROUP BY organization_id, location_id, day
)
SELECT bd.organization_id,
       bd.location_id,
       bd.day,
       count(*) AS total_appointments,
       count(*) FILTER (WHERE bd.status = 'ACCEPTED') AS accepted_appointments,
       count(*) FILTER (WHERE bd.status IN ('CANCELLED_BY_CUSTOMER', 'CANCELLED_BY_SELLER')) AS cancelled_appointments,
       count(*) FILTER (WHERE bd.status = 'NO_SHOW') AS no_shows,
       coalesce(max(nc.new_customers), 0) AS new_customers,
       count(DISTINCT bd.client_id) FILTER (WHERE bd.status = 'ACCEPTED' AND fv.square_customer_id IS NULL)
           AS returning_customers
FROM booking_days AS bd
LEFT JOIN first_visits AS fv
       ON fv.organization_id = bd.organization_id AND fv.location_id = bd.location_id
      AND fv.day = bd.day AND fv.square_customer_id = bd.client_id
LEFT JOIN new_customer_counts AS nc
       ON nc.organization_id = bd.organization_id AND nc.location_id = bd.location_id AND nc.day = bd.day
GROUP BY bd.organization_id, bd.location_id, bd.day
