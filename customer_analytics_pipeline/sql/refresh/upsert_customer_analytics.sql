-- Writes refresh_rows into customer_analytics. A row whose content did not change is
-- not rewritten (no dead tuple, updated_at stays truthful); created_at is kept.
-- {columns} / {excluded_columns} / {current_columns} are the content columns,
-- composed from Python with psycopg.sql.
WITH written AS (
    INSERT INTO customer_analytics AS ca ({columns}, created_at, updated_at)
    SELECT {columns}, now(), now()
    FROM refresh_rows
    ON CONFLICT (organization_id, square_customer_id) DO UPDATE
        SET ({columns}, updated_at) = ({excluded_columns}, now())
        WHERE ({current_columns}) IS DISTINCT FROM ({excluded_columns})
    -- xmax is 0 only on a freshly inserted tuple.
    RETURNING ca.organization_id, (ca.xmax = 0) AS inserted
)
SELECT organization_id::text AS organization_id,
       count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
FROM written
GROUP BY organization_id
