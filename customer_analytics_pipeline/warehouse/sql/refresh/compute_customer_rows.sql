-- Every metric of docs/contract.md, customer_analytics, computed once here, for the customers in
-- refresh_targets. Ties "in byte order" compare ids with COLLATE "C".
CREATE TEMP TABLE refresh_rows ON COMMIT DROP AS
WITH target_bookings AS (
    SELECT b.organization_id, b.square_customer_id, b.id, b.location_id, b.status,
           b.start_at, b.technician_id, b.service_variation_id,
           b.customer_note, b.seller_note
    FROM bookings AS b
    JOIN refresh_targets AS t USING (organization_id, square_customer_id)
    WHERE b.organization_id = ANY(%(organization_ids)s::uuid[])
),
booking_totals AS (
    SELECT organization_id, square_customer_id,
           min(start_at) FILTER (WHERE status = 'ACCEPTED') AS first_booking_at,
           max(start_at) FILTER (WHERE status = 'ACCEPTED') AS last_booking_at,
           count(*) FILTER (WHERE status = 'ACCEPTED') AS total_accepted_bookings,
           count(*) FILTER (WHERE status = 'CANCELLED_BY_CUSTOMER') AS total_cancelled_by_customer,
           count(*) FILTER (WHERE status = 'CANCELLED_BY_SELLER') AS total_cancelled_by_seller,
           count(*) FILTER (WHERE status = 'NO_SHOW') AS total_no_shows,
           count(DISTINCT location_id) FILTER (WHERE status = 'ACCEPTED') AS distinct_locations
    FROM target_bookings
    GROUP BY organization_id, square_customer_id
),
booking_notes AS (
    SELECT organization_id, square_customer_id,
           jsonb_agg(
               jsonb_build_object(
                   'booking_id', id,
                   -- The UTC instant as ISO 8601, fractional seconds only when present.
                   'start_at', to_char(start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                               || CASE WHEN date_trunc('second', start_at) <> start_at
                                       THEN to_char(start_at AT TIME ZONE 'UTC', '.US') ELSE '' END
                               || '+00:00',
                   'customer_note', customer_note,
                   'seller_note', seller_note)
               ORDER BY start_at, id COLLATE "C") AS booking_notes
    FROM target_bookings
    -- A note is empty when NULL or made only of space, tab, LF and CR.
    WHERE btrim(customer_note, E' \t\n\r') <> ''
       OR btrim(seller_note, E' \t\n\r') <> ''
    GROUP BY organization_id, square_customer_id
),
first_bookings AS (
    SELECT DISTINCT ON (organization_id, square_customer_id)
           organization_id, square_customer_id,
           id AS first_booking_id,
           location_id AS first_booking_location_id
    FROM target_bookings
    WHERE status = 'ACCEPTED'
    ORDER BY organization_id, square_customer_id, start_at, id COLLATE "C"
),
-- One ranking rule for both preferences: most accepted bookings, then the latest
-- accepted booking, then the smallest id in byte order.
preferences AS (
    SELECT DISTINCT ON (organization_id, square_customer_id, preference)
           organization_id, square_customer_id, preference, preferred_id
    FROM (
        SELECT b.organization_id, b.square_customer_id, p.preference, p.preferred_id,
               count(*) AS accepted_bookings,
               max(b.start_at) AS latest_start_at
        FROM target_bookings AS b
        CROSS JOIN LATERAL (VALUES ('technician', b.technician_id),
                                   ('service_variation', b.service_variation_id))
                   AS p (preference, preferred_id)
        WHERE b.status = 'ACCEPTED' AND p.preferred_id IS NOT NULL
        GROUP BY b.organization_id, b.square_customer_id, p.preference, p.preferred_id
    ) AS candidates
    ORDER BY organization_id, square_customer_id, preference,
             accepted_bookings DESC, latest_start_at DESC, preferred_id COLLATE "C"
),
payment_totals AS (
    SELECT p.organization_id, p.square_customer_id,
           sum(p.amount_cents - p.refunded_cents) AS total_revenue_cents,
           sum(p.tip_cents) AS total_tips_cents,
           count(*) AS total_payments,
           max(p.created_at) AS last_payment_at
    FROM payments AS p
    JOIN refresh_targets AS t USING (organization_id, square_customer_id)
    WHERE p.organization_id = ANY(%(organization_ids)s::uuid[])
      AND p.status = 'COMPLETED'
    GROUP BY p.organization_id, p.square_customer_id
),
-- Every target, its client row and metrics joined to it by LEFT JOINs only: the
-- planner then counts the targets' rows, which ANALYZE measured. An inner join with
-- square_existing_clients on (organization_id, square_customer_id) is estimated at a
-- few dozen rows where there are tens of thousands (the two key columns are
-- correlated, their selectivities get multiplied), and nested loops over the
-- per-customer aggregates followed. MATERIALIZED keeps the client filter below from
-- turning the LEFT JOIN back into an inner join inside this plan.
customers AS MATERIALIZED (
    SELECT t.organization_id,
           t.square_customer_id,
           (c.organization_id IS NOT NULL) AS client_found,
           c.given_name,
           c.family_name,
           c.email_address,
           c.phone_number,
           bt.first_booking_at,
           fb.first_booking_id,
           fb.first_booking_location_id,
           bt.last_booking_at,
           pt.last_payment_at,
           coalesce(bt.total_accepted_bookings, 0)::integer AS total_accepted_bookings,
           coalesce(bt.total_cancelled_by_customer, 0)::integer AS total_cancelled_by_customer,
           coalesce(bt.total_cancelled_by_seller, 0)::integer AS total_cancelled_by_seller,
           coalesce(bt.total_no_shows, 0)::integer AS total_no_shows,
           coalesce(pt.total_revenue_cents, 0)::bigint AS total_revenue_cents,
           coalesce(pt.total_tips_cents, 0)::bigint AS total_tips_cents,
           coalesce(pt.total_payments, 0)::integer AS total_payments,
           -- numeric round() rounds half away from zero, negative revenue included.
           round(pt.total_revenue_cents::numeric / pt.total_payments)::bigint AS avg_ticket_cents,
           coalesce(bn.booking_notes, '[]'::jsonb) AS booking_notes,
           technician.preferred_id AS preferred_technician_id,
           service_variation.preferred_id AS preferred_service_variation_id,
           coalesce(bt.distinct_locations, 0)::integer AS distinct_locations,
           (rp.activated_at IS NOT NULL) AS is_referrer,
           rp.activated_at AS activated_as_referrer_at,
           rp.referral_source,
           coalesce(rp.total_referrals, 0)::integer AS total_referrals,
           coalesce(rp.total_rewards_cents, 0)::bigint AS total_rewards_cents,
           customer_analytics_segment(bt.first_booking_at, bt.last_booking_at, %(as_of)s::timestamptz,
                                      %(new_days)s::integer, %(active_days)s::integer, %(at_risk_days)s::integer)
               AS customer_segment
    FROM refresh_targets AS t
    LEFT JOIN (SELECT * FROM square_existing_clients
               WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS c
           USING (organization_id, square_customer_id)
    LEFT JOIN booking_totals AS bt USING (organization_id, square_customer_id)
    LEFT JOIN booking_notes AS bn USING (organization_id, square_customer_id)
    LEFT JOIN first_bookings AS fb USING (organization_id, square_customer_id)
    LEFT JOIN payment_totals AS pt USING (organization_id, square_customer_id)
    LEFT JOIN (SELECT * FROM referral_profiles
               WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS rp
           USING (organization_id, square_customer_id)
    LEFT JOIN preferences AS technician
           ON technician.organization_id = t.organization_id
          AND technician.square_customer_id = t.square_customer_id
          AND technician.preference = 'technician'
    LEFT JOIN preferences AS service_variation
           ON service_variation.organization_id = t.organization_id
          AND service_variation.square_customer_id = t.square_customer_id
          AND service_variation.preference = 'service_variation'
)
-- A client deleted since the targets were selected gets no row.
SELECT organization_id, square_customer_id, given_name, family_name, email_address, phone_number,
       first_booking_at, first_booking_id, first_booking_location_id, last_booking_at, last_payment_at,
       total_accepted_bookings, total_cancelled_by_customer, total_cancelled_by_seller, total_no_shows,
       total_revenue_cents, total_tips_cents, total_payments, avg_ticket_cents, booking_notes,
       preferred_technician_id, preferred_service_variation_id, distinct_locations, is_referrer,
       activated_as_referrer_at, referral_source, total_referrals, total_rewards_cents, customer_segment
FROM customers
WHERE client_found
