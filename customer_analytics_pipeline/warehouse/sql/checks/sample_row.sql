-- One customer_analytics row of the checked organizations as JSON, to show what rows
-- look like: the given customer's when there is one, else the first. JSON renders
-- every timestamp as text ('infinity' and BC years included, which have no Python
-- value) and keeps only the first few booking notes; the caller masks personal fields.
WITH chosen AS (
    SELECT to_jsonb(ca) AS row_json
    FROM customer_analytics AS ca
    WHERE ca.organization_id = ANY(%(organization_ids)s::uuid[])
    ORDER BY (ca.organization_id::text, ca.square_customer_id)
             IS DISTINCT FROM (%(organization_id)s::text, %(square_customer_id)s::text),
             ca.organization_id, ca.square_customer_id
    LIMIT 1
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
