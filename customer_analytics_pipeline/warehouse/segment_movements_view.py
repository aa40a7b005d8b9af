"""The ``analytics_segment_movements_weekly`` VIEW (docs/contract.md, Segment movements):
its columns, the migration that defines it, its code version, and whether the database
has it as the contract says.

Unlike the daily view (``views.py``), its definition belongs to a migration (0005): a
plain GROUP BY over ``customer_segment_changes``, installed by ``customer-analytics
migrate`` (or by the first run of a code version that brings the migration) and changed
only by a later migration. Nothing recreates it once its migration is recorded, so a
view dropped or replaced by hand stays so: ``segment_movements_view_problem`` says so
from the catalog alone (no row read, no privilege on the view needed).
"""

import re

import psycopg

from customer_analytics_pipeline.warehouse.catalog import relation_columns, relation_kind
from customer_analytics_pipeline.warehouse.migrations import available_migrations
from customer_analytics_pipeline.warehouse.sql_files import load_sql, sql_files_version

SEGMENT_MOVEMENTS_VIEW = "analytics_segment_movements_weekly"
# The contract's columns, in order, with their types as format_type spells them.
SEGMENT_MOVEMENTS_VIEW_COLUMNS = (
    ("organization_id", "uuid"),
    ("week", "date"),
    ("from_segment", "text"),
    ("to_segment", "text"),
    ("customers", "bigint"),
)
_DEFINES_THE_VIEW = re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+{SEGMENT_MOVEMENTS_VIEW}\b", re.I | re.M)
# The migrations that create or replace the view; their text is its code version.
SEGMENT_MOVEMENTS_VIEW_MIGRATIONS = tuple(
    migration.path for migration in available_migrations() if _DEFINES_THE_VIEW.search(load_sql(migration.path))
)
if not SEGMENT_MOVEMENTS_VIEW_MIGRATIONS:
    raise ValueError(f"no migration creates {SEGMENT_MOVEMENTS_VIEW}: a packaging bug")
SEGMENT_MOVEMENTS_VIEW_CODE_VERSION = sql_files_version(SEGMENT_MOVEMENTS_VIEW_MIGRATIONS)


def _listed(columns) -> str:
    return ", ".join(f"{name} {type_name}" for name, type_name in columns)


def segment_movements_view_problem(conn: psycopg.Connection) -> str | None:
    """None when the database has the view with exactly the contract's columns and
    types, in order; else what is wrong, in one line."""
    kind = relation_kind(conn, SEGMENT_MOVEMENTS_VIEW)
    if kind is None:
        return f"{SEGMENT_MOVEMENTS_VIEW} is missing"
    if kind != "v":
        return f"{SEGMENT_MOVEMENTS_VIEW} is not a view (pg_class.relkind {kind!r})"
    columns = tuple((column.name, column.type_name) for column in relation_columns(conn, SEGMENT_MOVEMENTS_VIEW))
    if columns != SEGMENT_MOVEMENTS_VIEW_COLUMNS:
        return (f"{SEGMENT_MOVEMENTS_VIEW} has the columns ({_listed(columns)}), "
                f"not the contract's ({_listed(SEGMENT_MOVEMENTS_VIEW_COLUMNS)})")
    return None
