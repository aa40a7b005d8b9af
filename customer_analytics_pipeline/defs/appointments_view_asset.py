"""The ``analytics_appointments_by_location_daily`` asset: keeps the VIEW of
``warehouse/views.py`` current, downstream of ``customer_analytics`` and of the source
tables the view reads."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset

from customer_analytics_pipeline.defs.failures import RETRY_ON_TRANSIENT_ERRORS, database_failures_as_dagster_failures
from customer_analytics_pipeline.defs.metadata import column_schema
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.defs.source_assets import source_keys_read_by
from customer_analytics_pipeline.warehouse.migrations import ensure_schema_current
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_TABLE
from customer_analytics_pipeline.warehouse.source_tables import DAILY_VIEW
from customer_analytics_pipeline.warehouse.views import VIEW_CODE_VERSION, VIEW_NAME, ensure_view


@asset(
    name=VIEW_NAME,
    deps=[AssetKey(CUSTOMER_ANALYTICS_TABLE), *source_keys_read_by(DAILY_VIEW)],
    code_version=VIEW_CODE_VERSION,
    retry_policy=RETRY_ON_TRANSIENT_ERRORS,
    kinds={"postgres", "sql"},
    group_name="customer_analytics",
    description="VIEW: appointments per organization, location and local day; new customers from customer_analytics.",
)
def analytics_appointments_by_location_daily(
    context: AssetExecutionContext, database: PostgresResource
) -> MaterializeResult:
    """Keeps the view's definition current (a no-op when it already is, needing no DDL:
    ``customer-analytics migrate`` installs it)."""
    with database_failures_as_dagster_failures("view", context.retry_number), \
            database.connect(watch_lock_waits=True) as conn:
        ensure_schema_current(conn)
        recreated = ensure_view(conn)
        schema = column_schema(conn, VIEW_NAME)
    state = "(re)created" if recreated else "already current"
    context.log.info(f"view {VIEW_NAME} {state} (definition {VIEW_CODE_VERSION})")
    return MaterializeResult(
        metadata={"recreated": recreated, "definition_version": VIEW_CODE_VERSION, "dagster/column_schema": schema}
    )
