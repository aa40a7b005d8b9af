"""What the database says about a relation's columns (for the assets' column schema)."""

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    comment: str | None


def relation_columns(conn: psycopg.Connection, relation: str) -> list[Column]:
    """A table's or view's columns, types and COMMENTs as the database has them."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)"
        " FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (relation,),
    ).fetchall()
    return [Column(name, type_name, comment or None) for name, type_name, comment in rows]


def relation_kind(conn: psycopg.Connection, relation: str) -> str | None:
    """A relation's ``pg_class.relkind`` ('r' table, 'v' view, ...); None when there is
    no such relation on the search path. Reads the catalog only: any role may ask."""
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (relation,)).fetchone()
    return row[0] if row else None
