"""The source-table columns the project declares (``warehouse/source_tables.py``, which
the Dagster layer turns into external assets, their column schema and the assets'
dependencies) are exactly what its SQL reads: PostgreSQL's own plans of every statement
the refresh, the checks, the ticks and the views run say which columns of which table
each reads (``source_reads.py``). A column added to the SQL and not declared, a declared
column no SQL reads any more, a wrong reader, type or nullability: each fails here."""

import re
from datetime import timedelta

import psycopg
import pytest

from customer_analytics_pipeline.warehouse.batch_refresh import refresh_batch
from customer_analytics_pipeline.warehouse.checks.evaluation import (
    evaluate_customer_analytics_checks,
    evaluate_view_check,
)
from customer_analytics_pipeline.warehouse.migrations import create_source_tables
from customer_analytics_pipeline.warehouse.organizations import organization_keys
from customer_analytics_pipeline.warehouse.refresh import RefreshParameters
from customer_analytics_pipeline.warehouse.source_tables import (
    CHECKS,
    DAILY_VIEW,
    READERS,
    REFRESH,
    SCHEDULING,
    SOURCE_TABLES,
)
from customer_analytics_pipeline.warehouse.sql_files import SQL_DIR, load_sql
from customer_analytics_pipeline.warehouse.ticks import (
    organization_sizes,
    select_organizations_due,
    stale_organizations,
)
from customer_analytics_pipeline.warehouse.views import VIEW_NAME
from customer_analytics_pipeline_tests.helpers import anchor
from customer_analytics_pipeline_tests.source_reads import SYSTEM_COLUMNS, explaining

# Folders whose every statement must have been planned by the workloads below.
COVERED_SQL_FOLDERS = ("refresh", "checks", "ticks")


def application_tables() -> set[str]:
    """The tables the application owns: those its DDL creates (the pipeline's own
    tables, views and temporary tables are not sources)."""
    return set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", load_sql("source/create_source_tables.sql")))


def declared(reader: str | None = None) -> dict[str, set[str]]:
    """The declared columns per table, of one reader (None: every column)."""
    columns = {table.name: {c.name for c in table.columns if reader is None or reader in c.read_by}
               for table in SOURCE_TABLES}
    return {table: names for table, names in columns.items() if names}


def user_columns(reads: dict[str, set[str]]) -> dict[str, set[str]]:
    columns = {table: names - SYSTEM_COLUMNS for table, names in reads.items()}
    return {table: names for table, names in columns.items() if names}


def row_versions(reads: dict[str, set[str]]) -> set[str]:
    return {table for table, names in reads.items() if "xmin" in names}


def test_declared_columns_exist_with_the_types_and_nullability_of_the_source_tables(scratch_database_url):
    with psycopg.connect(scratch_database_url, autocommit=True) as conn:
        create_source_tables(conn)
        actual = {(table, column): (type_name, nullable) for table, column, type_name, nullable in conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull"
            " FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
            " AND a.attnum > 0 AND NOT a.attisdropped"
        )}
    declared_columns = {(table.name, c.name): (c.type_name, c.nullable)
                        for table in SOURCE_TABLES for c in table.columns}
    assert {key: actual.get(key) for key in declared_columns} == declared_columns
    assert len({table.name for table in SOURCE_TABLES}) == len(SOURCE_TABLES)
    for table in SOURCE_TABLES:
        names = [c.name for c in table.columns]
        assert len(set(names)) == len(names), table.name
        assert all(c.read_by and set(c.read_by) <= set(READERS) and c.description for c in table.columns), table.name
        assert table.description


def refresh_both_modes(connect, organizations: list[str]) -> None:
    for mode in ("full", "recent"):
        refresh_batch(connect, "source-reads", organizations, RefreshParameters(mode=mode, as_of=anchor()), 730)


def query_daily_view(connect, organizations: list[str]) -> None:
    with connect() as conn:
        conn.execute(f"SELECT * FROM {VIEW_NAME}")


def evaluate_the_eight_checks(connect, organizations: list[str]) -> None:
    with connect() as conn:
        evaluate_customer_analytics_checks(conn, organizations, remember_segments=True)
        evaluate_view_check(conn, organizations)


def tick_and_sense(connect, organizations: list[str]) -> None:
    """The hourly and nightly ticks' queries, the freshness check's, the partitions sensor's."""
    with connect() as conn:
        select_organizations_due(conn, organizations, RefreshParameters(mode="recent", as_of=anchor()))
        organization_sizes(conn, organizations)
        stale_organizations(conn, timedelta(hours=2))
        organization_keys(conn)


WORKLOADS = {REFRESH: refresh_both_modes, DAILY_VIEW: query_daily_view, CHECKS: evaluate_the_eight_checks,
             SCHEDULING: tick_and_sense}


@pytest.fixture
def source_reads(generated, database_url) -> tuple[dict[str, dict[str, set[str]]], list[str]]:
    """What each part of the project reads of the application's tables (the planned
    columns of every statement it ran on the generated data, by table), and the
    statements run."""
    organizations = organization_keys(generated)
    by_reader, statements = {}, []
    with explaining(database_url) as (reads, connect):
        for reader, workload in WORKLOADS.items():
            workload(connect, organizations)
            by_reader[reader] = reads.of(application_tables())
            statements += reads.statements
            reads.clear()
    return by_reader, statements


def test_every_statement_of_the_refresh_checks_and_ticks_was_planned(source_reads):
    _, statements = source_reads
    planned = "\n".join(statements)
    missing = [f"{folder}/{path.name}" for folder in COVERED_SQL_FOLDERS
               for path in sorted((SQL_DIR / folder).glob("*.sql"))
               if load_sql(f"{folder}/{path.name}").splitlines()[0] not in planned]
    assert missing == []


def qualified(columns: dict[str, set[str]]) -> set[str]:
    return {f"{table}.{column}" for table, names in columns.items() for column in names}


def test_each_part_reads_exactly_the_source_columns_declared_for_it(source_reads):
    reads, _ = source_reads
    problems = {}
    for reader in READERS:
        read, listed = qualified(user_columns(reads[reader])), qualified(declared(reader))
        if read != listed:
            problems[reader] = {"read, not declared": sorted(read - listed),
                                "declared, not read": sorted(listed - read)}
    assert problems == {}
    # Row versions (xmin) make the customers' fingerprints and the organizations' proofs.
    versioned = {table.name for table in SOURCE_TABLES if table.row_versions_read}
    assert {r: row_versions(reads[r]) for r in READERS} == {
        r: versioned if r in (REFRESH, SCHEDULING) else set() for r in READERS}
