-- avg_ticket_cents recomputed from payments: completed revenue / completed payments,
-- rounded half away from zero with integer arithmetic (sign * div(2|r| + n, 2n)), in
-- numeric: amounts whose difference or sum passes bigint fail the check, not the query.
-- A customer any of whose payments changed after the organization's last refresh is
-- left to the next refresh.
WITH customer_payments AS (
    SELECT ca.organization_id, ca.square_customer_id, ca.avg_ticket_cents, ca.email_address, ca.phone_number,
           sum(p.amount_cents::numeric - p.refunded_cents) FILTER (WHERE p.status = 'COMPLETED') AS revenue,
           count(*) FILTER (WHERE p.status = 'COMPLETED') AS payments,
           bool_or(p.updated_at > coalesce(s.last_refreshed_at, 'infinity')) AS changed_since_refresh
    FROM audited_rows AS ca
    LEFT JOIN (SELECT * FROM customer_analytics_refresh_state
               WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS s
           ON s.organization_id = ca.organization_id
    LEFT JOIN (SELECT * FROM payments WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS p
           ON p.organization_id = ca.organization_id AND p.square_customer_id = ca.square_customer_id
    GROUP BY ca.organization_id, ca.square_customer_id, ca.avg_ticket_cents, ca.email_address, ca.phone_number
),
expected AS (
    SELECT organization_id, square_customer_id, avg_ticket_cents, email_address, phone_number,
           CASE WHEN payments > 0
                THEN sign(revenue) * div(2 * abs(revenue) + payments, 2 * payments)
           END AS expected_avg_ticket_cents
    FROM customer_payments
    WHERE changed_since_refresh IS NOT TRUE
)
SELECT organization_id, square_customer_id,
       format('avg_ticket_cents is %%s, payments give %%s',
              coalesce(avg_ticket_cents::text, 'NULL'), coalesce(expected_avg_ticket_cents::text, 'NULL')) AS problem,
       email_address, phone_number
FROM expected
WHERE avg_ticket_cents IS DISTINCT FROM expected_avg_ticket_cents
