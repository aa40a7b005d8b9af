"""The ``analytics_segment_movements_weekly`` asset, downstream of
``customer_segment_changes``, and its one check.

Like the daily view's asset, it is in no job. The view is a plain VIEW, as current as
``customer_segment_changes`` at every read, and its definition is a migration's
(``warehouse/segment_movements_view.py``), which the refresh step applies when a code
version brings it. Materializing the asset by hand does the same (no DDL when the
schema is current) and reports the view's columns; it fails when the view is not the
contract's, since nothing then makes it current.

What could go wrong with the view, and what checks it:

- Dropped or replaced by hand: nothing recreates it (its migration is recorded as
  applied), and nothing of the pipeline reads it, so no run would notice. The check
  ``segment_movements_view_available`` reads the catalog: the view exists, with exactly
  the contract's columns and types. Cheap (no row is read) and needs no privilege on
  the view, which the runtime role does not have.
- Wrong rows: no check. The view has no state of its own: each row is one GROUP BY of
  ``customer_segment_changes``, computed at each read. A check recomputing it would
  run the same aggregate over the whole change log (up to
  CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS of history) to compare it with itself. The
  definition is compared with a pandas recomputation by the tests; the rows can only be
  as wrong as the change log, which the refresh writes in the segments' own transaction.
- Stale: cannot be, a plain view is computed at each read.
"""

import psycopg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    asset,
    asset_check,
)

from customer_analytics_pipeline.defs.failures import RETRY_ON_TRANSIENT_ERRORS, database_failures_as_dagster_failures
from customer_analytics_pipeline.defs.metadata import column_schema
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse.errors import describe
from customer_analytics_pipeline.warehouse.migrations import ensure_schema_current
from customer_analytics_pipeline.warehouse.schema import SEGMENT_CHANGES_TABLE
from customer_analytics_pipeline.warehouse.segment_movements_view import (
    SEGMENT_MOVEMENTS_VIEW,
    SEGMENT_MOVEMENTS_VIEW_CODE_VERSION,
    SEGMENT_MOVEMENTS_VIEW_MIGRATIONS,
    segment_movements_view_problem,
)

SEGMENT_MOVEMENTS_VIEW_KEY = AssetKey(SEGMENT_MOVEMENTS_VIEW)
SEGMENT_MOVEMENTS_VIEW_CHECK = "segment_movements_view_available"


@asset(
    name=SEGMENT_MOVEMENTS_VIEW,
    deps=[AssetKey(SEGMENT_CHANGES_TABLE)],
    code_version=SEGMENT_MOVEMENTS_VIEW_CODE_VERSION,
    retry_policy=RETRY_ON_TRANSIENT_ERRORS,
    kinds={"postgres", "sql"},
    group_name="customer_analytics",
    description="VIEW: per organization and ISO week (UTC, Monday) of changed_at, the distinct customers of each "
    "segment movement in customer_segment_changes.",
)
def analytics_segment_movements_weekly(context: AssetExecutionContext, database: PostgresResource) -> MaterializeResult:
    """Applies a pending migration (none when the schema is current), then reports the
    view's columns; fails when the view is not the contract's."""
    with database_failures_as_dagster_failures("view", context.retry_number), \
            database.connect(watch_lock_waits=True) as conn:
        ensure_schema_current(conn)
        problem = segment_movements_view_problem(conn)
        schema = column_schema(conn, SEGMENT_MOVEMENTS_VIEW)
    if problem:
        raise Failure(
            description=f"{problem}, although {', '.join(SEGMENT_MOVEMENTS_VIEW_MIGRATIONS)}, which defines it, is "
            "recorded as applied: drop what holds its name, if anything, and run that file again as the schema's "
            "owner (every migration is idempotent)",
            allow_retries=False,
        )
    context.log.info(f"view {SEGMENT_MOVEMENTS_VIEW} current (definition {SEGMENT_MOVEMENTS_VIEW_CODE_VERSION})")
    return MaterializeResult(
        metadata={"definition_version": SEGMENT_MOVEMENTS_VIEW_CODE_VERSION, "dagster/column_schema": schema}
    )


@asset_check(
    asset=SEGMENT_MOVEMENTS_VIEW_KEY,
    name=SEGMENT_MOVEMENTS_VIEW_CHECK,
    description="The view exists with exactly the contract's columns and types (read from the catalog).",
)
def segment_movements_view_available(
    context: AssetCheckExecutionContext, database: PostgresResource
) -> AssetCheckResult:
    """ERROR when the view is missing, not a view, or has other columns than the
    contract's; a database that cannot answer fails the check too, saying why."""
    try:
        with database.connect() as conn:
            problem = segment_movements_view_problem(conn)
    except psycopg.Error as error:
        problem = f"could not be evaluated: {describe(error)}"
    if problem:
        context.log.error(f"[ERROR] check {SEGMENT_MOVEMENTS_VIEW_CHECK} failed: {problem}")
    return AssetCheckResult(
        passed=problem is None,
        severity=AssetCheckSeverity.ERROR,
        metadata={"problem": problem or "none", "definition_version": SEGMENT_MOVEMENTS_VIEW_CODE_VERSION},
    )
