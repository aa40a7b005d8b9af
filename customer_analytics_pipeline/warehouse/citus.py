"""Citus: when the application's tables are distributed by ``organization_id``, the
pipeline's own tables are distributed beside them (docs/citus.md).

On plain PostgreSQL (no ``citus`` extension), and on a Citus coordinator whose
``square_existing_clients`` is a plain local table, nothing here changes anything. When
``square_existing_clients`` is distributed by ``organization_id``, every pipeline table
with that column is distributed by it, co-located with ``square_existing_clients`` (so
every join of the refresh, the checks and the views runs inside one shard group), and
the small tables without a tenant become reference tables. ``migrate`` (and a run that
applies a migration) calls ``distribute_pipeline_tables`` after the migrations, every
time: it distributes whatever is still local, so a database that moved to Citus after
the pipeline's tables were created gets them distributed by the next ``migrate``.
"""

import psycopg

from customer_analytics_pipeline.warehouse.locks import MIGRATION_LOCK
from customer_analytics_pipeline.warehouse.sql_files import load_sql

# The table every pipeline table is co-located with.
COLOCATE_WITH = "square_existing_clients"
DISTRIBUTION_COLUMN = "organization_id"
# The pipeline's tables and the kind of Citus table each becomes, in the order they are
# converted. A migration that adds a table adds it here (the Citus tests fail on any
# pipeline table left local).
PIPELINE_TABLES = {
    "customer_analytics": "distributed",
    "customer_analytics_source_fingerprints": "distributed",
    "customer_segment_changes": "distributed",
    "customer_analytics_refresh_state": "distributed",
    "customer_analytics_segment_snapshots": "distributed",
    "customer_analytics_schema_migrations": "reference",
    "customer_analytics_recorded_runs": "reference",
}


class CitusLayoutError(Exception):
    """The application's tables are on Citus in a layout the pipeline cannot co-locate with."""


def citus_installed(conn: psycopg.Connection) -> bool:
    """Whether the database has the ``citus`` extension."""
    return conn.execute(load_sql("citus/citus_installed.sql")).fetchone()[0]


def source_tables_distributed(conn: psycopg.Connection) -> bool:
    """Whether ``square_existing_clients`` is distributed (by ``organization_id``, or a
    CitusLayoutError says what is wrong); False on plain PostgreSQL."""
    if not citus_installed(conn):
        return False
    row = conn.execute(load_sql("citus/source_distribution.sql")).fetchone()
    if row is None or row[0] != "distributed":
        return False
    if row[1] != DISTRIBUTION_COLUMN:
        raise CitusLayoutError(
            f"{COLOCATE_WITH} is distributed by {row[1]}, not by {DISTRIBUTION_COLUMN}: the pipeline's tables "
            f"are co-located with it by {DISTRIBUTION_COLUMN} (docs/citus.md)"
        )
    return True


def tables_to_distribute(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(table, kind) of every existing pipeline table still to convert; empty on plain
    PostgreSQL and while the source tables are not distributed."""
    if not source_tables_distributed(conn):
        return []
    return conn.execute(
        load_sql("citus/pipeline_tables_to_distribute.sql"),
        {"table_names": list(PIPELINE_TABLES), "kinds": list(PIPELINE_TABLES.values())},
    ).fetchall()


def distribute_pipeline_tables(conn: psycopg.Connection) -> list[str]:
    """Distributes (or makes reference tables of) the pipeline's tables that are still
    local on a Citus database whose source tables are distributed; returns their names.
    Under the migration lock, in one transaction: a failure leaves every table as it was."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        pending = tables_to_distribute(conn)
        for table_name, kind in pending:
            params = {"table_name": table_name, "colocate_with": COLOCATE_WITH}
            if kind == "distributed":
                conn.execute(load_sql("citus/create_distributed_table.sql"), params)
            else:
                conn.execute(load_sql("citus/create_reference_table.sql"), params)
            conn.execute(load_sql("citus/truncate_local_data.sql"), params)
    return [table_name for table_name, _ in pending]


def distribute_source_tables(conn: psycopg.Connection) -> None:
    """Distributes the application's tables as docs/citus.md recommends (demo and tests
    only: in production the application distributes its own tables)."""
    with conn.transaction():
        conn.execute(load_sql("citus/distribute_source_tables.sql"))
