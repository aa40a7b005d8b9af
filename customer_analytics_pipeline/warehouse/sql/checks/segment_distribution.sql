-- Rows whose segment is NULL or not one of the four.
SELECT organization_id, square_customer_id,
       format('customer_segment is %%s', coalesce(quote_literal(customer_segment), 'NULL')) AS problem,
       email_address, phone_number
FROM audited_rows
WHERE customer_segment IS NULL OR customer_segment <> ALL(%(segments)s::text[])
