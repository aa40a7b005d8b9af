"""Migrations are versioned and idempotent, and run where the application made the source tables."""

import psycopg

from customer_analytics_pipeline.warehouse.citus import (
    citus_installed,
    distribute_pipeline_tables,
    source_tables_distributed,
    tables_to_distribute,
)
from customer_analytics_pipeline.warehouse.migrations import (
    apply_migrations,
    apply_source_indexes,
    available_migrations,
    create_source_tables,
    source_index_statements,
)
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_COLUMNS


def catalog_snapshot(conn: psycopg.Connection):
    """Everything the migrations create, as the catalog has it."""
    return conn.execute(
        "SELECT c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod),"
        " col_description(c.oid, a.attnum), pg_get_indexdef(i.indexrelid), pg_get_constraintdef(k.oid)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
        " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
        " LEFT JOIN pg_index i ON i.indrelid = c.oid"
        " LEFT JOIN pg_constraint k ON k.conrelid = c.oid"
        " ORDER BY 1, 2, 3, 4, 5, 6, 7"
    ).fetchall()


def test_migrations_apply_once_on_application_tables_and_twice_changes_nothing(scratch_database_url):
    with psycopg.connect(scratch_database_url, autocommit=True) as conn:
        create_source_tables(conn)  # what the application has in production
        applied = apply_migrations(conn)
        assert [m.version for m in applied] == [m.version for m in available_migrations()]
        apply_source_indexes(conn)
        before = catalog_snapshot(conn)
        assert apply_migrations(conn) == []
        apply_source_indexes(conn)
        assert catalog_snapshot(conn) == before


def test_customer_analytics_has_every_column_key_foreign_key_and_comment(conn):
    columns = dict(conn.execute(
        "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute"
        " WHERE attrelid = 'customer_analytics'::regclass AND attnum > 0 AND NOT attisdropped"
    ).fetchall())
    assert set(columns) == set(CUSTOMER_ANALYTICS_COLUMNS)
    assert all(columns.values()), [name for name, comment in columns.items() if not comment]
    constraints = dict(conn.execute(
        "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'customer_analytics'::regclass"
    ).fetchall())
    assert constraints["p"] == "PRIMARY KEY (organization_id, square_customer_id)"
    expected = "REFERENCES square_existing_clients(organization_id, square_customer_id) ON DELETE CASCADE"
    assert expected in constraints["f"]


def test_every_optional_index_exists_and_an_interrupted_build_is_redone(conn):
    names = [statement.split("IF NOT EXISTS")[1].split()[0] for statement in source_index_statements()]
    assert names and all(s.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS") for s in source_index_statements())
    # An interrupted CONCURRENTLY build leaves the index marked invalid.
    conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (names[0],))
    apply_source_indexes(conn)
    valid = dict(conn.execute(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = ANY(%s)", (names,)
    ).fetchall())
    assert valid == {name: True for name in names}


def test_first_migrations_from_several_runs_at_once_all_succeed(scratch_database_url):
    """The first scheduled tick starts several runs on a fresh database, each migrating."""
    import threading

    with psycopg.connect(scratch_database_url, autocommit=True) as conn:
        create_source_tables(conn)
    start, errors, applied = threading.Barrier(6), [], []

    def migrate():
        try:
            with psycopg.connect(scratch_database_url, autocommit=True) as conn:
                start.wait()
                applied.extend(m.version for m in apply_migrations(conn))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # Whichever run holds the lock applies the next migration: each exactly once overall.
    assert sorted(applied) == [m.version for m in available_migrations()]


def test_migrate_command_leaves_the_application_tables_alone_unless_asked(scratch_database_url, tmp_path):
    import os
    import subprocess
    import sys

    with psycopg.connect(scratch_database_url, autocommit=True) as conn:
        create_source_tables(conn)
    index_names = [statement.split("IF NOT EXISTS")[1].split()[0] for statement in source_index_statements()]
    env = {**os.environ, "DATABASE_URL": scratch_database_url}

    def migrate(*flags):
        completed = subprocess.run([sys.executable, "-m", "customer_analytics_pipeline", "migrate", *flags],
                                   cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        with psycopg.connect(scratch_database_url) as conn:
            return {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)",
                                                   (index_names,))}, conn.execute(
                "SELECT to_regclass('customer_analytics') IS NOT NULL").fetchone()[0]

    assert migrate() == (set(), True)
    assert migrate("--source-indexes") == (set(index_names), True)


def test_on_plain_postgresql_migrate_distributes_nothing(conn):
    """The Citus step (docs/citus.md) recognises plain PostgreSQL and leaves it alone."""
    assert not citus_installed(conn)
    assert not source_tables_distributed(conn)
    assert tables_to_distribute(conn) == []
    assert distribute_pipeline_tables(conn) == []
