-- How Citus holds square_existing_clients, the table every pipeline table is co-located
-- with: its kind ('distributed', 'reference', 'local'; no row for a plain table on the
-- coordinator) and its distribution column (NULL unless distributed).
SELECT ct.citus_table_type, ct.distribution_column
FROM citus_tables AS ct
WHERE ct.table_name = to_regclass('square_existing_clients')
