-- Makes one small pipeline table without a tenant a reference table: one copy on every
-- node. Rows the table already holds are copied.
SELECT create_reference_table(%(table_name)s::regclass)
