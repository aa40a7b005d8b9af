"""Keeps the development commands (`demo`, `ui`) to databases of their own.

A database is the demo's when it is empty (no table, view or sequence of any kind in the
schemas of its search path, where the demo would create its own) or when the demo set
it up: then it has ``customer_analytics_demo_organizations``, listing every organization
the demo loaded, and no other organization. Anything else holds someone's data (an
application's tables, even empty, or any table at all), and the commands refuse before
they write anything (no DDL, no indexes, no ``dagster`` database, no rows).
"""

import psycopg
from psycopg import sql

from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.warehouse.migrations import create_source_tables

DEMO_ORGANIZATIONS_TABLE = "customer_analytics_demo_organizations"
_DEMO_ORGANIZATIONS = sql.Identifier(DEMO_ORGANIZATIONS_TABLE)


class NotADemoDatabase(Exception):
    """The database holds data the demo did not create."""


# How many of a stranger's relations the refusal names.
NAMED_RELATIONS = 5


def relations_in_search_path(conn: psycopg.Connection) -> list[str]:
    """Tables (plain, partitioned, foreign), views, materialized views and sequences in
    the schemas the demo would create its objects in."""
    return [row[0] for row in conn.execute(
        "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class AS c"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = ANY(current_schemas(false)) AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')"
        " ORDER BY 1"
    )]


def refuse_unless_demo_database(conn: psycopg.Connection) -> None:
    """Raises NotADemoDatabase, saying why and what to do instead, unless the database is
    empty or was set up by the demo with only the demo's organizations."""
    (has_marker,) = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (DEMO_ORGANIZATIONS_TABLE,)).fetchone()
    if not has_marker:
        relations = relations_in_search_path(conn)
        if not relations:
            return
        more = f" and {len(relations) - NAMED_RELATIONS} more" if len(relations) > NAMED_RELATIONS else ""
        reason = (f"it is not empty, and the demo did not create what it holds: "
                  f"{', '.join(relations[:NAMED_RELATIONS])}{more}")
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
        "Dagster as docs/operations.md's production runbook says."
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
