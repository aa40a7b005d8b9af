"""Every PostgreSQL advisory lock the pipeline takes, in one place so no two collide
with each other (or, through their namespaces, with the application's own locks).

All are transaction-scoped (``pg_advisory_xact_lock``): released at commit or rollback,
or when the server ends the session.
"""

# Per-organization refresh locks: (ORGANIZATION_LOCK_NAMESPACE, hashtext(organization id)),
# taken in ascending key order (sql/refresh/lock_organizations.sql).
ORGANIZATION_LOCK_NAMESPACE = 20_261_126
# Serializes recreating the view (a namespace apart from the organization locks).
VIEW_LOCK = (20_261_127, 1)
# Serializes migrators (two runs starting together on a fresh database migrate once).
MIGRATION_LOCK = 7_201_126_001
