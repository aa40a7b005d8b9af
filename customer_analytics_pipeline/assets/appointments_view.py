"""The ``analytics_appointments_by_location_daily`` asset (the VIEW of ``views.py``) and its check."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    asset,
    multi_asset_check,
)

from customer_analytics_pipeline.assets.customer_analytics import (
    RETRY_ON_TRANSIENT_ERRORS,
    column_schema,
    customer_analytics,
    database_failures_as_dagster_failures,
)
from customer_analytics_pipeline.checks.dagster_results import report_outcomes
from customer_analytics_pipeline.checks.evaluation import (
    VIEW_CHECK,
    evaluate_view_check,
)
from customer_analytics_pipeline.migrations import ensure_schema_current
from customer_analytics_pipeline.partitions import organizations_to_check
from customer_analytics_pipeline.resources import PostgresResource
from customer_analytics_pipeline.views import VIEW_CODE_VERSION, VIEW_NAME, ensure_view


@asset(
    name=VIEW_NAME,
    deps=[customer_analytics],
    code_version=VIEW_CODE_VERSION,
    retry_policy=RETRY_ON_TRANSIENT_ERRORS,
    kinds={"postgres", "sql"},
    group_name="customer_analytics",
    description="VIEW: appointments per organization, location and local day; new customers from customer_analytics.",
)
def analytics_appointments_by_location_daily(
    context: AssetExecutionContext, database: PostgresResource
) -> MaterializeResult:
    """Keeps the view's definition current (a no-op when it already is)."""
    with database_failures_as_dagster_failures("view"), database.connect() as conn:
        ensure_schema_current(conn)
        recreated = ensure_view(conn)
        schema = column_schema(conn, VIEW_NAME)
    context.log.info(f"view {VIEW_NAME} {'(re)created' if recreated else 'already current'} (definition {VIEW_CODE_VERSION})")
    return MaterializeResult(
        metadata={"recreated": recreated, "definition_version": VIEW_CODE_VERSION, "dagster/column_schema": schema}
    )


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            VIEW_CHECK,
            asset=AssetKey(VIEW_NAME),
            description="The view exists, answers, and its new_customers sum per organization equals the "
            "customers with a first_booking_at.",
        )
    ]
)
def appointments_view_checks(context: AssetCheckExecutionContext, database: PostgresResource):
    """Check 8, for the organizations of the run (every organization outside partitioned runs)."""
    with database.connect() as conn:
        organization_ids = organizations_to_check(context.instance, context.run.tags, conn)
        yield from report_outcomes(context, conn, [evaluate_view_check(conn, organization_ids)], organization_ids)
