-- Writes refresh_rows into customer_analytics. Rows whose content did not change are
-- filtered out before the INSERT, so they are neither rewritten nor even row-locked
-- (no dead tuples, no dirtied pages, updated_at stays truthful); created_at is kept.
-- {columns} / {new_columns} / {current_columns} are the content columns, composed
-- from Python with psycopg.sql.
-- A client deleted by the application since refresh_rows was computed is skipped (its
-- row is gone with it); a delete racing this very statement raises a foreign-key
-- violation, which the asset retries.
-- Every segment it changes, a new customer's first included, is logged to
-- customer_segment_changes in the same statement (docs/contract.md, Segment movements).
-- Citus (docs/citus.md): the batch's current rows and clients are CTEs filtered by the
-- batch, joined to refresh_rows (a temporary table) without correlated subqueries: Citus
-- cannot join a local table directly with distributed ones, and falls back to planning
-- each such CTE on its own (the batch's rows brought to the coordinator). PostgreSQL
-- inlines both CTEs and plans the same left join and semi-join as a correlated EXISTS.
-- updated_at on conflict is excluded.updated_at (the now() of the SELECT): Citus allows
-- only immutable functions in DO UPDATE SET.
WITH batch_rows AS (
    SELECT * FROM customer_analytics
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
),
batch_clients AS (
    SELECT organization_id, square_customer_id
    FROM square_existing_clients
    WHERE organization_id = ANY(%(organization_ids)s::uuid[])
),
changed AS (
    SELECT r.*, ca.customer_segment AS previous_segment
    FROM refresh_rows AS r
    LEFT JOIN batch_rows AS ca USING (organization_id, square_customer_id)
    WHERE (ca.organization_id IS NULL OR ({current_columns}) IS DISTINCT FROM ({new_columns}))
      AND (r.organization_id, r.square_customer_id) IN (
            SELECT c.organization_id, c.square_customer_id FROM batch_clients AS c)
),
written AS (
    INSERT INTO customer_analytics AS ca ({columns}, created_at, updated_at)
    SELECT {columns}, now(), now()
    FROM changed
    ORDER BY organization_id, square_customer_id  -- key order, as below
    ON CONFLICT (organization_id, square_customer_id) DO UPDATE
        SET ({columns}, updated_at) = ({excluded_columns}, excluded.updated_at)
    -- xmax is 0 only on a freshly inserted tuple.
    RETURNING ca.organization_id, (ca.xmax = 0) AS inserted
),
segment_changes AS (
    INSERT INTO customer_segment_changes
        (organization_id, square_customer_id, from_segment, to_segment, as_of, changed_at)
    SELECT organization_id, square_customer_id, previous_segment, customer_segment, %(as_of)s::timestamptz, now()
    FROM changed
    WHERE previous_segment IS DISTINCT FROM customer_segment
    -- In key order: the key's index and the foreign key's lookups in the clients' key
    -- then walk their pages in order (a first full refresh logs every customer).
    ORDER BY organization_id, square_customer_id
)
SELECT organization_id::text AS organization_id,
       count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
FROM written
GROUP BY organization_id
