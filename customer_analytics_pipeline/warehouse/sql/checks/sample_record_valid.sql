-- Row invariants: counts are set and never negative; first_booking_at and last_booking_at
-- are both set or both NULL, and first_booking_at <= last_booking_at;
-- total_accepted_bookings > 0 exactly when first_booking_at is set. NULL-safe: an
-- invariant a NULL would leave unknown is written so that the NULL fails it.
SELECT organization_id, square_customer_id, problem, email_address, phone_number
FROM (
    SELECT ca.*,
           concat_ws('; ',
               CASE WHEN (total_accepted_bookings >= 0) IS NOT TRUE
                    THEN format('total_accepted_bookings is %%s', coalesce(total_accepted_bookings::text, 'NULL')) END,
               CASE WHEN (total_cancelled_by_customer >= 0) IS NOT TRUE
                    THEN format('total_cancelled_by_customer is %%s',
                                coalesce(total_cancelled_by_customer::text, 'NULL')) END,
               CASE WHEN (total_cancelled_by_seller >= 0) IS NOT TRUE
                    THEN format('total_cancelled_by_seller is %%s', coalesce(total_cancelled_by_seller::text, 'NULL')) END,
               CASE WHEN (total_no_shows >= 0) IS NOT TRUE
                    THEN format('total_no_shows is %%s', coalesce(total_no_shows::text, 'NULL')) END,
               CASE WHEN (total_payments >= 0) IS NOT TRUE
                    THEN format('total_payments is %%s', coalesce(total_payments::text, 'NULL')) END,
               CASE WHEN (distinct_locations >= 0) IS NOT TRUE
                    THEN format('distinct_locations is %%s', coalesce(distinct_locations::text, 'NULL')) END,
               CASE WHEN (total_referrals >= 0) IS NOT TRUE
                    THEN format('total_referrals is %%s', coalesce(total_referrals::text, 'NULL')) END,
               CASE WHEN (first_booking_at IS NULL) <> (last_booking_at IS NULL)
                    THEN 'first_booking_at and last_booking_at are not both set' END,
               CASE WHEN first_booking_at > last_booking_at THEN 'first_booking_at > last_booking_at' END,
               CASE WHEN (total_accepted_bookings > 0) IS DISTINCT FROM (first_booking_at IS NOT NULL)
                    THEN 'total_accepted_bookings > 0 disagrees with first_booking_at being set' END
           ) AS problem
    FROM audited_rows AS ca
) AS checked
WHERE problem <> ''
