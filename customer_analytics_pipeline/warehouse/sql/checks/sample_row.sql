-- One customer_analytics row of the checked organizations as JSON, to show what rows
-- look like: the given customer's when there is one, else the first. JSON renders
-- every timestamp as text ('infinity' and BC years included, which have no Python
-- value) and keeps only the first few booking notes; the caller masks personal fields.
WITH candidates AS (
    -- the given customer's row (a key lookup) ...
    SELECT 0 AS preference, ca.organization_id, ca.square_customer_id
    FROM customer_analytics AS ca
    WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
      AND ca.organization_id = %(organization_id)s::uuid
      AND ca.square_customer_id = %(square_customer_id)s::text
    UNION ALL
    -- ... else the first key of the organizations (keys only: no row is rendered to sort)
    (SELECT 1, ca.organization_id, ca.square_customer_id
     FROM customer_analytics AS ca
     WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
     ORDER BY ca.organization_id, ca.square_customer_id
     LIMIT 1)
),
chosen AS (
    SELECT to_jsonb(ca) AS row_json
    FROM (SELECT * FROM candidates ORDER BY preference LIMIT 1) AS pick
    JOIN customer_analytics AS ca USING (organization_id, square_customer_id)
)
SELECT CASE WHEN jsonb_typeof(row_json -> 'booking_notes') = 'array' THEN
           row_json || jsonb_build_object(
               'booking_notes_count', jsonb_array_length(row_json -> 'booking_notes'),
               'booking_notes', (SELECT coalesce(jsonb_agg(note ORDER BY position), '[]'::jsonb)
                                 FROM jsonb_array_elements(row_json -> 'booking_notes')
                                      WITH ORDINALITY AS notes(note, position)
                                 WHERE position <= %(notes)s))
       ELSE row_json END
FROM chosen
