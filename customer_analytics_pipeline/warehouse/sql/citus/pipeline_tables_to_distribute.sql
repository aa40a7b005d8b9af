-- The pipeline's tables that exist here and are not Citus tables yet, each with the kind
-- it is to become ('distributed' or 'reference'), in the order given.
SELECT t.table_name, t.kind
FROM unnest(%(table_names)s::text[], %(kinds)s::text[]) WITH ORDINALITY AS t (table_name, kind, position)
WHERE to_regclass(t.table_name) IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM citus_tables AS ct WHERE ct.table_name = to_regclass(t.table_name))
ORDER BY t.position
