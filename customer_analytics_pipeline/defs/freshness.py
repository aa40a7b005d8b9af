"""Freshness in the run log: "every organization refreshed or verified within the
window" (docs/contract.md, Ticks at the cost of change).

The asset's FreshnessPolicy already turns its health red in the UI when no tick has
reported for the window; its state changes belong to no run. So a sensor watches the
pipeline's own record (``customer_analytics_refresh_state``: each organization's last
refresh or verification) and, each time the answer changes between "all current" and
"some stale", launches a run of the check ``refreshed_or_verified_recently``: an ERROR
in that run's log names how many organizations are stale and since when; the next run,
once they are current again, passes. A quiet hour changes nothing: the tick verified
every organization.
"""

from datetime import timedelta

import psycopg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSelection,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    TableColumn,
    TableRecord,
    TableSchema,
    define_asset_job,
    multi_asset_check,
    sensor,
)

from customer_analytics_pipeline.defs.customer_analytics_asset import CUSTOMER_ANALYTICS_KEY
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse.checks.evaluation import FRESHNESS_CHECK
from customer_analytics_pipeline.warehouse.errors import describe
from customer_analytics_pipeline.warehouse.ticks import stale_organizations

FRESHNESS_JOB_NAME = "check_customer_analytics_freshness"
MAX_LISTED = 20


def build_freshness_alarm(window: timedelta):
    """The check, the job that runs it alone, and the sensor that launches that job
    whenever freshness flips."""
    hours = window.total_seconds() / 3600

    @multi_asset_check(
        name="customer_analytics_freshness",
        specs=[AssetCheckSpec(FRESHNESS_CHECK, asset=CUSTOMER_ANALYTICS_KEY,
                              description=f"Every organization refreshed or verified by a tick within {hours:g} h.")],
    )
    def freshness_check(context: AssetCheckExecutionContext, database: PostgresResource):
        with database.connect() as conn:
            stale = stale_organizations(conn, window)
        oldest = stale[0].current_at if stale else None
        if stale:
            since = f"since {oldest.isoformat()}" if oldest else "never refreshed"
            context.log.error(
                f"[ERROR] check {FRESHNESS_CHECK} failed: {len(stale)} organization(s) neither refreshed nor "
                f"verified within {hours:g} h (the longest {since}); is hourly_recent_refresh running and green?"
            )
        yield AssetCheckResult(
            check_name=FRESHNESS_CHECK,
            asset_key=CUSTOMER_ANALYTICS_KEY,
            passed=not stale,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "stale_organizations": len(stale),
                "window_hours": hours,
                "oldest_current_at": oldest.isoformat() if oldest else "never" if stale else "n/a",
                "stale_sample": MetadataValue.table(
                    [TableRecord({"organization_id": o.organization_id, "organization": o.name,
                                  "current_at": o.current_at.isoformat() if o.current_at else "never"})
                     for o in stale[:MAX_LISTED]],
                    schema=TableSchema(columns=[TableColumn("organization_id", "string"),
                                                TableColumn("organization", "string"),
                                                TableColumn("current_at", "string")]),
                ),
            },
        )

    freshness_job = define_asset_job(
        FRESHNESS_JOB_NAME, selection=AssetSelection.checks(freshness_check),
        description=f"Checks that every organization was refreshed or verified within {hours:g} h.",
    )

    @sensor(
        name="customer_analytics_freshness_sensor",
        job=freshness_job,
        minimum_interval_seconds=600,
        description="Runs the freshness check whenever organizations turn stale or current again.",
        default_status=DefaultSensorStatus.RUNNING,
    )
    def freshness_sensor(context: SensorEvaluationContext, database: PostgresResource):
        try:
            with database.connect() as conn:
                stale = stale_organizations(conn, window)
        except psycopg.errors.UndefinedTable as error:  # nothing set up yet: say what to run
            return SkipReason(describe(error))
        state = "stale" if stale else "current"
        if state == (context.cursor or "current"):
            return SkipReason(f"freshness unchanged: {len(stale)} organization(s) stale")
        context.update_cursor(state)
        context.log.info(f"freshness turned {state}: {len(stale)} organization(s) stale; running the check")
        return RunRequest(tags={"customer_analytics/freshness": state})

    return freshness_check, freshness_job, freshness_sensor

