-- After a table that held rows was distributed, its rows live in the shards; this
-- removes the now unused copy left in the coordinator's own table.
SELECT truncate_local_data_after_distributing_table(%(table_name)s::regclass)
