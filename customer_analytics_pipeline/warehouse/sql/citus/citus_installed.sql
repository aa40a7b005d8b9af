-- Whether this database has the citus extension (plain PostgreSQL: false; Citus's own
-- catalogs exist only then, so the other files here run only after this said true).
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')
