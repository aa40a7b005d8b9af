-- avg_ticket_cents recomputed from payments: completed revenue / completed payments,
-- rounded half away from zero with integer arithmetic (sign * div(2|r| + n, 2n)), in
-- numeric: amounts whose difference or sum passes bigint fail the check, not the query.
-- Only the audited customers' payments are summed (with %(every_row)s, the batch's: the
-- test is then folded away, see README.md, Plans). A customer any of whose payments
-- changed after the organization's last refresh is left to the next refresh.
WITH customer_payments AS (
    SELECT p.organization_id, p.square_customer_id,
           sum(p.amount_cents::numeric - p.refunded_cents) FILTER (WHERE p.status = 'COMPLETED') AS revenue,
           count(*) FILTER (WHERE p.status = 'COMPLETED') AS payments,
           max(p.updated_at) AS last_changed_at
    FROM payments AS p
    WHERE p.organization_id = ANY(%(organization_ids)s::uuid[])
      AND p.square_customer_id IS NOT NULL
      AND (%(every_row)s::boolean
           OR (p.organization_id, p.square_customer_id) IN (SELECT organization_id, square_customer_id
                                                            FROM audited_rows))
    GROUP BY p.organization_id, p.square_customer_id
),
expected AS (
    SELECT ca.organization_id, ca.square_customer_id, ca.avg_ticket_cents, ca.email_address, ca.phone_number,
           CASE WHEN cp.payments > 0
                THEN sign(cp.revenue) * div(2 * abs(cp.revenue) + cp.payments, 2 * cp.payments)
           END AS expected_avg_ticket_cents
    FROM audited_rows AS ca
    LEFT JOIN customer_payments AS cp
           ON cp.organization_id = ca.organization_id AND cp.square_customer_id = ca.square_customer_id
    LEFT JOIN (SELECT * FROM customer_analytics_refresh_state
               WHERE organization_id = ANY(%(organization_ids)s::uuid[])) AS s
           ON s.organization_id = ca.organization_id
    WHERE (cp.last_changed_at > coalesce(s.last_refreshed_at, 'infinity')) IS NOT TRUE
)
SELECT organization_id, square_customer_id,
       format('avg_ticket_cents is %%s, payments give %%s',
              coalesce(avg_ticket_cents::text, 'NULL'), coalesce(expected_avg_ticket_cents::text, 'NULL')) AS problem,
       email_address, phone_number
FROM expected
WHERE avg_ticket_cents IS DISTINCT FROM expected_avg_ticket_cents
