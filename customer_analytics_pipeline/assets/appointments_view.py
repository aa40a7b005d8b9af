"""The ``analytics_appointments_by_location_daily`` VIEW (SPEC section 3) and its check.

The view's definition lives in ``sql/views/``; its hash is the asset's code version, so
a changed definition shows as changed in the UI. Materializing recreates the view only
when it is missing or its stored version differs, under an advisory lock (never two
runs at once), as DROP + CREATE in one transaction so removed or renamed columns work.
"""

import hashlib

import psycopg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    multi_asset_check,
    asset,
)
from psycopg import sql

from customer_analytics_pipeline.assets.customer_analytics import (
    RETRY_ON_TRANSIENT_ERRORS,
    column_schema,
    customer_analytics,
    database_failures_as_dagster_failures,
)
from customer_analytics_pipeline.checks.evaluation import Failures, check_result, find_failures
from customer_analytics_pipeline.migrations import ensure_schema_current
from customer_analytics_pipeline.partitions import organizations_to_check
from customer_analytics_pipeline.resources import PostgresResource
from customer_analytics_pipeline.sql_files import load_sql

VIEW_NAME = "analytics_appointments_by_location_daily"
VIEW_DEFINITION = load_sql(f"views/{VIEW_NAME}.sql")
VIEW_CODE_VERSION = hashlib.sha256(VIEW_DEFINITION.encode()).hexdigest()[:16]
# The view's comment carries its version: the database says which definition it runs.
VIEW_COMMENT = f"Appointments per organization, location and local day (SPEC section 3). definition {VIEW_CODE_VERSION}"
# (namespace, key) of the advisory lock that serializes view recreation; a namespace
# of its own, apart from the per-organization refresh locks (ORGANIZATION_LOCK_NAMESPACE).
VIEW_LOCK = (20_261_127, 1)


def installed_view_comment(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c"
        " WHERE c.oid = to_regclass(%s) AND c.relkind = 'v'",
        (VIEW_NAME,),
    ).fetchone()
    return row[0] if row else None


def ensure_view(conn: psycopg.Connection) -> bool:
    """Creates or replaces the view when missing or changed; True when it did.

    No CASCADE: if other objects depend on the view, the DROP fails loudly instead of
    silently dropping them.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", VIEW_LOCK)
        if installed_view_comment(conn) == VIEW_COMMENT:
            return False
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(VIEW_NAME)))
        conn.execute(VIEW_DEFINITION)
        conn.execute(
            sql.SQL("COMMENT ON VIEW {} IS {}").format(sql.Identifier(VIEW_NAME), sql.Literal(VIEW_COMMENT))
        )
        return True


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


def view_failures(conn: psycopg.Connection, organization_ids: list[str]) -> Failures:
    """The view exists and answers, and per organization its new_customers add up."""
    if installed_view_comment(conn) is None:
        return Failures(error=f"view {VIEW_NAME} does not exist")
    return find_failures(conn, "appointments_view_available", organization_ids)


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "appointments_view_available",
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
        yield check_result(
            AssetKey(VIEW_NAME), "appointments_view_available", view_failures(conn, organization_ids),
            len(organization_ids), context.log,
        )
