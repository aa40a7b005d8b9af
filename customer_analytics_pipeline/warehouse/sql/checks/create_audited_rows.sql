-- The customer_analytics rows the checks audit, copied once into a temporary table that
-- every check then reads as audited_rows (instead of each check finding them again among
-- the batch's rows of the table), and analyzed so that the checks' joins from it are
-- planned on its real size. With %(every_row)s, every row of the organizations: the
-- check command, or a refresh asked for a full audit. Otherwise a refresh's audit,
-- inside its transaction: every row it wrote, stamped with the transaction's now()
-- (bound as %(refreshed_at)s: docs/citus.md), and of the rows it left as they were, the
-- customers whose sample bucket (a hash of the customer id modulo %(sample_buckets)s) is
-- in the organization's window in %(sample)s, a JSON object
-- {"<organization id>": {"first": <bucket>, "buckets": <how many>}}, where an
-- organization without a window has every bucket audited.
CREATE TEMP TABLE audited_rows ON COMMIT DROP AS
SELECT ca.*
FROM customer_analytics AS ca
WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
  AND (%(every_row)s::boolean
       OR ca.updated_at = %(refreshed_at)s::timestamptz
       OR mod(mod(abs(hashtext(ca.square_customer_id)::bigint), %(sample_buckets)s::integer)
              - coalesce((%(sample)s::jsonb -> ca.organization_id::text ->> 'first')::integer, 0)
              + %(sample_buckets)s::integer, %(sample_buckets)s::integer)
          < coalesce((%(sample)s::jsonb -> ca.organization_id::text ->> 'buckets')::integer,
                     %(sample_buckets)s::integer))
