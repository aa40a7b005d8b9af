-- Appointments per organization, location and local day (SPEC section 3).
-- day: the local date of start_at in the location's time zone; the UTC date when the
-- location has no locations row or its timezone is NULL or not an exact IANA zone
-- name. Exact means a case-sensitive match in pg_timezone_names, minus the tzdata
-- build copies 'posix/...', 'right/...' and 'posixrules' (AT TIME ZONE alone would
-- also accept 'america/new_york' and abbreviations such as 'PST').
-- new_customers is read from customer_analytics's first accepted booking, so each
-- customer is new exactly once, at that booking's location and local day.
-- The CTEs are NOT MATERIALIZED so a dashboard's organization filter reaches every
-- table (one organization's rows are read, not the whole table).
CREATE VIEW analytics_appointments_by_location_daily AS
WITH location_zones AS NOT MATERIALIZED (
    SELECT l.organization_id, l.square_location_id AS location_id, l.timezone AS zone
    FROM locations AS l
    WHERE l.timezone IN (
        SELECT z.name FROM pg_timezone_names AS z
        WHERE z.name !~ '^(posix|right)/' AND z.name <> 'posixrules')
),
booking_days AS NOT MATERIALIZED (
    SELECT b.organization_id,
           b.location_id,
           b.status,
           c.square_customer_id AS client_id,  -- NULL unless the customer is a known client
           (b.start_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date AS day,
           -- this booking's customer had the first accepted booking here, that local day
           coalesce(ca.first_booking_location_id = b.location_id
                    AND (ca.first_booking_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date
                        = (b.start_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date,
                    false) AS new_here
    FROM bookings AS b
    LEFT JOIN location_zones AS lz
           ON lz.organization_id = b.organization_id AND lz.location_id = b.location_id
    LEFT JOIN square_existing_clients AS c
           ON c.organization_id = b.organization_id AND c.square_customer_id = b.square_customer_id
    LEFT JOIN customer_analytics AS ca
           ON ca.organization_id = c.organization_id AND ca.square_customer_id = c.square_customer_id
),
new_customer_counts AS NOT MATERIALIZED (
    SELECT ca.organization_id,
           ca.first_booking_location_id AS location_id,
           (ca.first_booking_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date AS day,
           count(*) AS new_customers
    FROM customer_analytics AS ca
    LEFT JOIN location_zones AS lz
           ON lz.organization_id = ca.organization_id AND lz.location_id = ca.first_booking_location_id
    WHERE ca.first_booking_at IS NOT NULL
    GROUP BY 1, 2, 3
)
SELECT bd.organization_id,
       bd.location_id,
       bd.day,
       count(*) AS total_appointments,
       count(*) FILTER (WHERE bd.status = 'ACCEPTED') AS accepted_appointments,
       count(*) FILTER (WHERE bd.status IN ('CANCELLED_BY_CUSTOMER', 'CANCELLED_BY_SELLER')) AS cancelled_appointments,
       count(*) FILTER (WHERE bd.status = 'NO_SHOW') AS no_shows,
       coalesce(max(nc.new_customers), 0) AS new_customers,
       count(DISTINCT bd.client_id) FILTER (WHERE bd.status = 'ACCEPTED' AND NOT bd.new_here) AS returning_customers
FROM booking_days AS bd
LEFT JOIN new_customer_counts AS nc
       ON nc.organization_id = bd.organization_id AND nc.location_id = bd.location_id AND nc.day = bd.day
GROUP BY bd.organization_id, bd.location_id, bd.day
