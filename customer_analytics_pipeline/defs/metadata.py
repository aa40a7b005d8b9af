"""Materialization metadata the assets share."""

import psycopg
from dagster import TableColumn, TableSchema

from customer_analytics_pipeline.warehouse.catalog import relation_columns


def column_schema(conn: psycopg.Connection, relation: str) -> TableSchema:
    """``dagster/column_schema`` of a table or view: its columns, types and COMMENTs as
    the database has them."""
    columns = relation_columns(conn, relation)
    return TableSchema(columns=[TableColumn(name=c.name, type=c.type_name, description=c.comment) for c in columns])
