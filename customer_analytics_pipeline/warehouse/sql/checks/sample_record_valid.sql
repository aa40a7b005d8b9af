-- Row invariants: counts are never negative; first_booking_at <= last_booking_at;
-- total_accepted_bookings > 0 exactly when first_booking_at is set.
SELECT organization_id, square_customer_id, problem, email_address, phone_number
FROM (
    SELECT ca.*,
           concat_ws('; ',
               CASE WHEN total_accepted_bookings < 0 THEN 'total_accepted_bookings < 0' END,
               CASE WHEN total_cancelled_by_customer < 0 THEN 'total_cancelled_by_customer < 0' END,
               CASE WHEN total_cancelled_by_seller < 0 THEN 'total_cancelled_by_seller < 0' END,
               CASE WHEN total_no_shows < 0 THEN 'total_no_shows < 0' END,
               CASE WHEN total_payments < 0 THEN 'total_payments < 0' END,
               CASE WHEN distinct_locations < 0 THEN 'distinct_locations < 0' END,
               CASE WHEN total_referrals < 0 THEN 'total_referrals < 0' END,
               CASE WHEN first_booking_at > last_booking_at THEN 'first_booking_at > last_booking_at' END,
               CASE WHEN (total_accepted_bookings > 0) IS DISTINCT FROM (first_booking_at IS NOT NULL)
                    THEN 'total_accepted_bookings > 0 disagrees with first_booking_at being set' END
           ) AS problem
    FROM customer_analytics AS ca
    WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
) AS checked
WHERE problem <> ''
