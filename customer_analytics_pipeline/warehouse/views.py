"""The ``analytics_appointments_by_location_daily`` VIEW (docs/contract.md, The daily
appointments view): its definition, version and installation, with plain psycopg.

The view's definition lives in ``sql/views/``; its hash is the asset's code version, so a
changed definition shows as changed in the UI. ``customer-analytics migrate`` installs it;
a run recreates it only when it is missing or its stored version differs, under an
advisory lock (never two at once), as DROP + CREATE in one transaction so removed or
renamed columns work.
"""

import hashlib

import psycopg
from psycopg import sql

from customer_analytics_pipeline.warehouse.locks import VIEW_LOCK
from customer_analytics_pipeline.warehouse.sql_files import load_sql

VIEW_NAME = "analytics_appointments_by_location_daily"
VIEW_DEFINITION = load_sql(f"views/{VIEW_NAME}.sql")
VIEW_CODE_VERSION = hashlib.sha256(VIEW_DEFINITION.encode()).hexdigest()[:16]
# The view's comment carries its version: the database says which definition it runs.
VIEW_COMMENT = (
    "Appointments per organization, location and local day (docs/contract.md, The daily appointments view)."
    f" definition {VIEW_CODE_VERSION}"
)


def installed_view_comment(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c"
        " WHERE c.oid = to_regclass(%s) AND c.relkind = 'v'",
        (VIEW_NAME,),
    ).fetchone()
    return row[0] if row else None


def ensure_view(conn: psycopg.Connection) -> bool:
    """Creates or replaces the view when missing or changed; True when it did.

    No CASCADE: if other objects depend on the view, the DROP fails loudly instead of
    silently dropping them.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", VIEW_LOCK)
        if installed_view_comment(conn) == VIEW_COMMENT:
            return False
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(VIEW_NAME)))
        conn.execute(VIEW_DEFINITION)
        conn.execute(
            sql.SQL("COMMENT ON VIEW {} IS {}").format(sql.Identifier(VIEW_NAME), sql.Literal(VIEW_COMMENT))
        )
        return True
