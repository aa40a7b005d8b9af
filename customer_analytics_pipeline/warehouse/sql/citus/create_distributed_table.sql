-- Distributes one pipeline table by organization_id, its shards placed with those of
-- %(colocate_with)s (square_existing_clients), so every join on organization_id runs on
-- one worker. Rows the table already holds are copied into its shards.
SELECT create_distributed_table(%(table_name)s::regclass, 'organization_id', colocate_with => %(colocate_with)s::text)
