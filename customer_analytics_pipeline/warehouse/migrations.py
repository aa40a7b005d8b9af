"""Schema management: the source-table DDL (demo/tests), the pipeline's versioned
migrations, and the optional concurrent source-table indexes."""

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from customer_analytics_pipeline.warehouse.citus import distribute_pipeline_tables, tables_to_distribute
from customer_analytics_pipeline.warehouse.locks import MIGRATION_LOCK
from customer_analytics_pipeline.warehouse.sql_files import SQL_DIR, load_sql
from customer_analytics_pipeline.warehouse.views import ensure_view

MIGRATIONS_TABLE = "customer_analytics_schema_migrations"
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: str


def available_migrations() -> list[Migration]:
    """Migration files in version order; a duplicated version number is a packaging bug."""
    migrations = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], f"migrations/{path.name}"))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {versions}")
    return migrations


def create_source_tables(conn: psycopg.Connection) -> None:
    """Creates the application's source tables (demo and tests only; production has them)."""
    with conn.transaction():
        conn.execute(load_sql("source/create_source_tables.sql"))


def apply_migrations(conn: psycopg.Connection) -> list[Migration]:
    """Applies the pipeline's pending migrations, each once and in its own transaction,
    then, on a Citus database whose source tables are distributed, distributes the
    pipeline's tables that are still local (``warehouse/citus.py``; nothing on plain
    PostgreSQL).

    Returns the migrations applied by this call (empty when the schema is current).
    """
    migrations = available_migrations()
    with conn.transaction():
        # Locked first: two runs starting together on a fresh database would otherwise
        # race on CREATE TABLE IF NOT EXISTS (a unique violation in pg_type).
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(MIGRATIONS_TABLE))
        )
    applied = []
    for migration in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            already = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE version = %s").format(sql.Identifier(MIGRATIONS_TABLE)),
                (migration.version,),
            ).fetchone()
            if already:
                continue
            conn.execute(load_sql(migration.path))
            conn.execute(
                sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(
                    sql.Identifier(MIGRATIONS_TABLE)
                ),
                (migration.version, migration.name),
            )
            applied.append(migration)
    distribute_pipeline_tables(conn)
    return applied


def migrate(conn: psycopg.Connection) -> list[Migration]:
    """What ``customer-analytics migrate`` does, as the owner of the pipeline's objects:
    the pending migrations, then the view (created or replaced when it differs)."""
    applied = apply_migrations(conn)
    ensure_view(conn)
    return applied


class SchemaNotCurrent(Exception):
    """The pipeline's schema needs migrations the connected role may not apply."""


def pending_migrations(conn: psycopg.Connection) -> list[Migration]:
    """The migrations not applied yet; read-only, so any role can ask."""
    (table_exists,) = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MIGRATIONS_TABLE,)).fetchone()
    applied = set()
    if table_exists:
        query = sql.SQL("SELECT version FROM {}").format(sql.Identifier(MIGRATIONS_TABLE))
        applied = {row[0] for row in conn.execute(query)}
    return [migration for migration in available_migrations() if migration.version not in applied]


def ensure_schema_current(conn: psycopg.Connection) -> list[Migration]:
    """What a run calls: nothing at all (no DDL, no CREATE privilege needed) when the
    schema is current, which ``customer-analytics migrate`` makes it; applies what is
    pending otherwise, once per code version, and says what to do when the role may not."""
    pending = pending_migrations(conn)
    # On Citus, pipeline tables left local beside distributed source tables (the
    # application moved to Citus after the last `migrate`) cannot be joined with them.
    undistributed = [] if pending else [table for table, _ in tables_to_distribute(conn)]
    if not pending and not undistributed:
        return []
    try:
        return apply_migrations(conn)
    except psycopg.errors.InsufficientPrivilege as error:
        names = ", ".join(
            [f"migration {m.version:04d}_{m.name}" for m in pending] + [f"distributing {t}" for t in undistributed]
        )
        raise SchemaNotCurrent(
            f"the pipeline's schema needs {names}, which this database role may not apply "
            "(permission denied): run `customer-analytics migrate` as the schema's owner"
        ) from error


def source_index_statements() -> list[str]:
    """The optional index migration, one CREATE INDEX CONCURRENTLY statement per item."""
    text = "\n".join(
        line for line in load_sql("source/create_source_indexes.sql").splitlines()
        if not line.lstrip().startswith("--")
    )
    return [statement.strip() for statement in re.split(r";\s*$", text, flags=re.M) if statement.strip()]


def apply_source_indexes(conn: psycopg.Connection) -> None:
    """Builds the optional source-table indexes without blocking the application's writes.

    CONCURRENTLY cannot run inside a transaction, so this needs an autocommit
    connection. An interrupted concurrent build leaves an INVALID index that
    ``IF NOT EXISTS`` would keep forever; such a leftover is dropped and rebuilt.
    """
    if not conn.autocommit:
        raise ValueError("apply_source_indexes needs an autocommit connection (CREATE INDEX CONCURRENTLY)")
    # A concurrent build of a large table may take longer than a refresh statement may.
    conn.execute("SELECT set_config('statement_timeout', '0', false)")
    for statement in source_index_statements():
        index_name = re.search(r"IF NOT EXISTS\s+(\w+)", statement)[1]
        invalid = conn.execute(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace"
            " AND NOT i.indisvalid",
            (index_name,),
        ).fetchone()
        if invalid:
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(index_name)))
        conn.execute(statement)
