"""The application's source tables as external assets (group ``application``): the
project reads them and never writes them, so Dagster shows them upstream in the lineage
and never materializes them. Made from the one list of ``warehouse/source_tables.py``:
each carries, as ``dagster/column_schema``, the columns the project reads (a table may
have more), and the assets that read a table depend on it.

No code version: nothing here computes these tables."""

from dagster import AssetKey, AssetSpec, TableColumn, TableColumnConstraints, TableSchema

from customer_analytics_pipeline.warehouse.source_tables import READERS, SOURCE_TABLES, SourceTable, tables_read_by

SOURCE_GROUP = "application"


def source_key(table: SourceTable) -> AssetKey:
    """A source table's asset key: its name, as the project's own tables have theirs."""
    return AssetKey(table.name)


def declared_column_schema(table: SourceTable) -> TableSchema:
    """The columns of ``table`` the project reads, each saying who reads it."""
    return TableSchema(columns=[
        TableColumn(
            name=column.name,
            type=column.type_name,
            description=f"{column.description} Read by: {', '.join(r for r in READERS if r in column.read_by)}.",
            constraints=TableColumnConstraints(nullable=column.nullable),
        )
        for column in table.columns
    ])


def source_table_spec(table: SourceTable) -> AssetSpec:
    versions = (
        " The refresh and the hourly tick also read each row's version (xmin): a changed row makes the next recent "
        "refresh recompute its customer and the hourly tick refresh its organization."
    ) if table.row_versions_read else ""
    return AssetSpec(
        source_key(table),
        description=f"Application table {table.name} (read only; docs/contract.md, Source tables). "
        f"{table.description}{versions} Columns listed: those the project reads; the table may have more.",
        group_name=SOURCE_GROUP,
        kinds={"postgres"},
        metadata={"dagster/column_schema": declared_column_schema(table)},
    )


SOURCE_TABLE_SPECS = [source_table_spec(table) for table in SOURCE_TABLES]


def source_keys_read_by(reader: str) -> list[AssetKey]:
    """The keys of the source tables ``reader`` (``warehouse/source_tables.py``) reads."""
    return [source_key(table) for table in tables_read_by(reader)]
