-- avg_ticket_cents recomputed from payments: completed revenue / completed payments,
-- rounded half away from zero with integer arithmetic (sign * div(2|r| + n, 2n)), in
-- numeric: amounts whose difference or sum passes bigint fail the check, not the query.
WITH completed_payments AS (
    SELECT p.organization_id, p.square_customer_id,
           sum(p.amount_cents::numeric - p.refunded_cents) AS revenue,
           count(*) AS payments,
           max(p.updated_at) AS last_changed_at
    FROM payments AS p
    WHERE p.organization_id = ANY(%(organization_ids)s::uuid[])
      AND p.status = 'COMPLETED'
      AND p.square_customer_id IS NOT NULL
    GROUP BY p.organization_id, p.square_customer_id
),
expected AS (
    SELECT ca.organization_id, ca.square_customer_id, ca.avg_ticket_cents, ca.email_address, ca.phone_number,
           CASE WHEN cp.payments > 0
                THEN sign(cp.revenue) * div(2 * abs(cp.revenue) + cp.payments, 2 * cp.payments)
           END AS expected_avg_ticket_cents
    FROM audited_rows AS ca
    LEFT JOIN completed_payments AS cp
           ON cp.organization_id = ca.organization_id AND cp.square_customer_id = ca.square_customer_id
    LEFT JOIN customer_analytics_refresh_state AS s ON s.organization_id = ca.organization_id
    WHERE NOT EXISTS (
            SELECT 1 FROM payments AS p
            -- The batch restated on p: a hashed anti-join then reads the batch's rows, not the table.
            WHERE p.organization_id = ANY(%(organization_ids)s::uuid[])
              AND p.organization_id = ca.organization_id AND p.square_customer_id = ca.square_customer_id
              AND p.updated_at > coalesce(s.last_refreshed_at, 'infinity'))
)
SELECT organization_id, square_customer_id,
       format('avg_ticket_cents is %%s, payments give %%s',
              coalesce(avg_ticket_cents::text, 'NULL'), coalesce(expected_avg_ticket_cents::text, 'NULL')) AS problem,
       email_address, phone_number
FROM expected
WHERE avg_ticket_cents IS DISTINCT FROM expected_avg_ticket_cents
