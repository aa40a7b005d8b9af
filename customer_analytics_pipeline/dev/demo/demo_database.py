"""Keeps the development commands (`demo`, `ui`) to databases of their own.

A database is the demo's when it has no ``organizations`` table yet (the demo creates the
source tables) or when the demo created them: then it also has
``customer_analytics_demo_organizations``, listing every organization the demo loaded.
Anything else holds an application's data, and the commands refuse before they write
anything (no DDL, no indexes, no ``dagster`` database, no rows).
"""

import psycopg
from psycopg import sql

from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.warehouse.migrations import create_source_tables

DEMO_ORGANIZATIONS_TABLE = "customer_analytics_demo_organizations"
_DEMO_ORGANIZATIONS = sql.Identifier(DEMO_ORGANIZATIONS_TABLE)


class NotADemoDatabase(Exception):
    """The database holds data the demo did not create."""


def refuse_unless_demo_database(conn: psycopg.Connection) -> None:
    """Raises NotADemoDatabase, saying why and what to do instead, unless the database is
    empty of source tables or was set up by the demo with only the demo's organizations."""
    (has_organizations, has_marker) = conn.execute(
        "SELECT to_regclass('organizations') IS NOT NULL, to_regclass(%s) IS NOT NULL", (DEMO_ORGANIZATIONS_TABLE,)
    ).fetchone()
    if not has_organizations:
        return
    if not has_marker:
        reason = "it already has an organizations table that the demo did not create"
    else:
        (foreign,) = conn.execute(sql.SQL(
            "SELECT count(*) FROM organizations AS o"
            " WHERE NOT EXISTS (SELECT 1 FROM {} AS d WHERE d.organization_id = o.id)"
        ).format(_DEMO_ORGANIZATIONS)).fetchone()
        if not foreign:
            return
        reason = f"it holds {foreign} organization(s) that are not demo data"
    raise NotADemoDatabase(
        f"refusing to use this database for demo data: {reason}. `demo` and `ui` only run on a database of "
        "their own: unset DATABASE_URL (an embedded server starts) or point it at a new, empty database. "
        "Against an application's database use `customer-analytics migrate`, `refresh` and `check`, and serve "
        "Dagster as README's production runbook says."
    )


def create_demo_source_tables(conn: psycopg.Connection) -> None:
    """The application's tables, as the demo's own (see the module docstring)."""
    with conn.transaction():
        create_source_tables(conn)
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (organization_id uuid PRIMARY KEY)").format(_DEMO_ORGANIZATIONS)
        )


def demo_organization_count(conn: psycopg.Connection) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_DEMO_ORGANIZATIONS)).fetchone()[0]


def load_demo_data(conn: psycopg.Connection, settings: GeneratorSettings, replace: bool, progress) -> None:
    """Generates demo data and records its organizations, in one transaction; ``replace``
    first deletes the demo's previous organizations (and, cascading, their rows): only
    those, never anything else."""
    with conn.transaction():
        if replace:
            conn.execute(sql.SQL(
                "DELETE FROM organizations WHERE id IN (SELECT organization_id FROM {})"
            ).format(_DEMO_ORGANIZATIONS))
            conn.execute(sql.SQL("DELETE FROM {}").format(_DEMO_ORGANIZATIONS))
        generate(conn, settings, progress=progress)
        conn.execute(sql.SQL(
            "INSERT INTO {} (organization_id) SELECT id FROM organizations ON CONFLICT DO NOTHING"
        ).format(_DEMO_ORGANIZATIONS))
