-- The application's tables on Citus as docs/citus.md recommends (demo and tests only: in
-- production the application distributes its own tables): every table that carries
-- organization_id distributed by it, co-located with organizations (distributed by id),
-- and application_logs, which has no tenant, a reference table. organizations goes
-- first: the others' foreign keys to it need it distributed.
SELECT create_distributed_table('organizations', 'id');
SELECT create_distributed_table('locations', 'organization_id', colocate_with => 'organizations');
SELECT create_distributed_table('square_existing_clients', 'organization_id', colocate_with => 'organizations');
SELECT create_distributed_table('bookings', 'organization_id', colocate_with => 'organizations');
SELECT create_distributed_table('payments', 'organization_id', colocate_with => 'organizations');
SELECT create_distributed_table('referral_profiles', 'organization_id', colocate_with => 'organizations');
SELECT create_reference_table('application_logs');
