-- Appointments per organization, location and local day (docs/contract.md, The daily appointments view).
-- day: the local date of start_at in the location's time zone; the UTC date when the
-- location has no locations row or its timezone is NULL or not an exact IANA zone
-- name. Exact means a case-sensitive match in pg_timezone_names, minus the tzdata
-- build copies 'posix/...', 'right/...' and 'posixrules' (AT TIME ZONE alone would
-- also accept 'america/new_york' and abbreviations such as 'PST').
-- new_customers is read from customer_analytics's first accepted booking, so each
-- customer is new exactly once, at that booking's location and local day: one row per
-- such customer joins the bookings' rows in one aggregate (day_rows), and only groups
-- with at least one booking are kept.
-- The CTEs over bookings, locations and customer_analytics are NOT MATERIALIZED and
-- organization_id, location_id and day are grouping columns, so a dashboard's filter on
-- them (= or = ANY) is applied below the aggregate, in both arms of the UNION ALL: only
-- the filtered organizations' rows are read. zone_names is MATERIALIZED: both arms read
-- it, and reading pg_timezone_names once (tens of ms) costs more than reading the
-- organization's locations twice. On Citus (docs/citus.md) this shape makes a query for
-- one organization a single task on the worker holding it (zone_names evaluated there);
-- with the locations inside the materialized CTE, Citus planned each arm on its own and
-- read every organization's bookings.
CREATE VIEW analytics_appointments_by_location_daily AS
WITH zone_names AS MATERIALIZED (
    SELECT z.name FROM pg_timezone_names AS z
    WHERE z.name !~ '^(posix|right)/' AND z.name <> 'posixrules'
),
location_zones AS NOT MATERIALIZED (
    SELECT l.organization_id, l.square_location_id AS location_id, l.timezone AS zone
    FROM locations AS l
    WHERE l.timezone IN (SELECT zn.name FROM zone_names AS zn)
),
booking_days AS NOT MATERIALIZED (
    SELECT b.organization_id,
           b.location_id,
           (b.start_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date AS day,
           b.status,
           c.square_customer_id AS client_id,  -- NULL unless the customer is a known client
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
first_booking_days AS NOT MATERIALIZED (
    SELECT ca.organization_id,
           ca.first_booking_location_id AS location_id,
           (ca.first_booking_at AT TIME ZONE coalesce(lz.zone, 'UTC'))::date AS day
    FROM customer_analytics AS ca
    LEFT JOIN location_zones AS lz
           ON lz.organization_id = ca.organization_id AND lz.location_id = ca.first_booking_location_id
    WHERE ca.first_booking_at IS NOT NULL
),
day_rows AS NOT MATERIALIZED (
    SELECT organization_id, location_id, day, status, client_id, new_here, false AS is_first_booking
    FROM booking_days
    UNION ALL
    SELECT organization_id, location_id, day, NULL, NULL, false, true
    FROM first_booking_days
)
SELECT organization_id,
       location_id,
       day,
       count(*) FILTER (WHERE NOT is_first_booking) AS total_appointments,
       count(*) FILTER (WHERE status = 'ACCEPTED') AS accepted_appointments,
       count(*) FILTER (WHERE status IN ('CANCELLED_BY_CUSTOMER', 'CANCELLED_BY_SELLER')) AS cancelled_appointments,
       count(*) FILTER (WHERE status = 'NO_SHOW') AS no_shows,
       count(*) FILTER (WHERE is_first_booking) AS new_customers,
       count(DISTINCT client_id) FILTER (WHERE status = 'ACCEPTED' AND NOT new_here) AS returning_customers
FROM day_rows
GROUP BY organization_id, location_id, day
HAVING count(*) FILTER (WHERE NOT is_first_booking) > 0
