"""Which columns of which relations the project's SQL reads, as PostgreSQL plans it.

A connection made by ``explaining_connect`` runs ``EXPLAIN (VERBOSE, FORMAT JSON)`` of
every query before running it (same parameters, same transaction). A verbose plan names
every column an expression, a condition, a sort or an output uses as ``alias.column``,
and every scanned table with its alias (views are expanded into their tables), so the
plans say exactly what each statement reads, whatever the SQL's shape: CTEs, views,
subqueries, templates composed in Python.

One trap: a scan whose parent projects may output the whole row (PostgreSQL's "physical
target list", cheaper than projecting), naming columns nobody uses. Such a scan's own
output list is ignored unless the scan is where a query's result is shaped (the plan's
root, a CTE's or subquery's top, a UNION ALL arm), where the output is exactly what the
query selects; the columns its parents use are named by the parents anyway.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

# Statements EXPLAIN can plan (DDL, ANALYZE, COMMENT... are run without a plan).
EXPLAINABLE = re.compile(
    r"^\s*(?:--[^\n]*\n\s*)*(?:select|with|insert|update|delete|create\s+temp(?:orary)?\s+table)\b", re.I
)
# Where a plan's tree shapes a query's result: the output is what the query selects.
EXACT_OUTPUT_POSITIONS = {"InitPlan", "SubPlan", "Subquery", "Member"}
QUALIFIED_COLUMN = re.compile(r'(?<![\w."])"?([A-Za-z_][\w$]*)"?\."?([A-Za-z_][\w$]*)"?')
SYSTEM_COLUMNS = frozenset({"xmin", "xmax", "cmin", "cmax", "ctid", "tableoid"})


@dataclass
class Reads:
    """What the statements run on explaining connections read, and their text."""

    physical_columns: dict[str, list[str]]  # relation -> its columns in attnum order
    columns: dict[str, set[str]] = field(default_factory=dict)  # relation -> columns read
    statements: list[str] = field(default_factory=list)

    def add_plan(self, plan: dict) -> None:
        aliases: dict[str, str] = {}
        _collect_aliases(plan, aliases)
        _collect_columns(plan, aliases, self.physical_columns, self.columns, root=True)

    def of(self, relations) -> dict[str, set[str]]:
        """The columns read of each of ``relations`` that was read at all."""
        return {relation: set(self.columns[relation]) for relation in relations if relation in self.columns}

    def clear(self) -> None:
        self.columns.clear()
        self.statements.clear()


def _is_scan(node: dict) -> bool:
    return "Relation Name" in node and node.get("Node Type") != "ModifyTable"


def _collect_aliases(node: dict, aliases: dict[str, str]) -> None:
    if _is_scan(node):
        aliases[node.get("Alias", node["Relation Name"])] = node["Relation Name"]
    for child in node.get("Plans", []):
        _collect_aliases(child, aliases)


def _collect_columns(node: dict, aliases: dict[str, str], physical: dict[str, list[str]],
                     columns: dict[str, set[str]], root: bool) -> None:
    skip_output = False
    if _is_scan(node) and not root and node.get("Parent Relationship") not in EXACT_OUTPUT_POSITIONS:
        alias = node.get("Alias", node["Relation Name"])
        skip_output = node.get("Output") == [f"{alias}.{name}" for name in physical.get(node["Relation Name"], [])]
    for key, value in node.items():
        if key == "Plans" or (key == "Output" and skip_output):
            continue
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                for match in QUALIFIED_COLUMN.finditer(text):
                    if match[1] in aliases:
                        columns.setdefault(aliases[match[1]], set()).add(match[2])
    for child in node.get("Plans", []):
        _collect_columns(child, aliases, physical, columns, root=False)


def physical_columns(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Every relation of the current schema with its columns in attnum order."""
    columns: dict[str, list[str]] = {}
    for relation, column in conn.execute(
        "SELECT c.relname, a.attname FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid"
        " WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY c.relname, a.attnum"
    ):
        columns.setdefault(relation, []).append(column)
    return columns


def explaining_cursor_class(reads: Reads) -> type[psycopg.Cursor]:
    class ExplainingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            text = query.as_string(self.connection) if isinstance(query, sql.Composable) else query
            if EXPLAINABLE.match(text):
                explain = sql.SQL("EXPLAIN (VERBOSE, FORMAT JSON) ")
                explained = explain + (query if isinstance(query, sql.Composable) else sql.SQL(query))
                with psycopg.Cursor(self.connection) as cursor:
                    (plans,) = cursor.execute(explained, params).fetchone()
                reads.add_plan(plans[0]["Plan"])
                reads.statements.append(text)
            return super().execute(query, params, **kwargs)

    return ExplainingCursor


@contextmanager
def explaining(database_url: str) -> Iterator[tuple[Reads, Callable[..., AbstractContextManager[psycopg.Connection]]]]:
    """``(reads, connect)``: ``connect(watch_lock_waits=False)`` opens an autocommit
    connection (closed on exit, as ``PostgresResource.connect`` does) whose statements
    are recorded in ``reads``."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        reads = Reads(physical_columns(conn))
    cursor_class = explaining_cursor_class(reads)

    @contextmanager
    def connect(watch_lock_waits: bool = False) -> Iterator[psycopg.Connection]:
        with psycopg.connect(database_url, autocommit=True, cursor_factory=cursor_class) as conn:
            yield conn

    yield reads, connect
