"""hourly_recent_refresh and nightly_full_refresh: every organization partition, in
batched partition-range runs (one run per ``organizations_per_run`` organizations).
Both run by default once a daemon serves the code location (SPEC section 5); an
operator can still stop them in the UI, and that choice overrides the default."""

from collections.abc import Iterator, Sequence

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from customer_analytics_pipeline.defs.jobs import refresh_customer_analytics_job
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.refresh import RefreshMode, RefreshParameters


def batches(keys: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices of ``keys`` (partition order) of at most ``size`` keys."""
    return [list(keys[start : start + size]) for start in range(0, len(keys), size)]


def refresh_run_requests(
    context: ScheduleEvaluationContext, schedule_name: str, mode: str, organizations_per_run: int
) -> Iterator[RunRequest | SkipReason]:
    """One partition-range run per batch. The tick's scheduled time is every batch's
    ``as_of`` (one consistent instant per tick) and part of its run key, so a tick
    is never launched twice."""
    keys = context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    if not keys:
        yield SkipReason("no organization partitions yet (organization_partitions_sensor adds them)")
        return
    tick = context.scheduled_execution_time
    for number, batch in enumerate(batches(keys, organizations_per_run), 1):
        yield RunRequest(
            run_key=f"{schedule_name}:{tick.isoformat()}:{batch[0]}..{batch[-1]}",
            run_config={"ops": {"customer_analytics": {"config": {"mode": mode, "as_of": tick.isoformat()}}}},
            tags={
                PARTITION_RANGE_START_TAG: batch[0],
                PARTITION_RANGE_END_TAG: batch[-1],
                "customer_analytics/mode": mode,
                "customer_analytics/batch": f"{number}",
            },
        )


def refresh_schedule(
    name: str, cron: str, timezone: str, mode: RefreshMode, organizations_per_run: int, description: str
) -> ScheduleDefinition:
    @schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone=timezone,
        job=refresh_customer_analytics_job,
        description=description,
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def _schedule(context: ScheduleEvaluationContext):
        yield from refresh_run_requests(context, name, mode, organizations_per_run)

    return _schedule


def build_schedules(settings: Settings) -> list[ScheduleDefinition]:
    """hourly_recent_refresh and nightly_full_refresh, as the settings time them."""
    return [
        refresh_schedule(
            "hourly_recent_refresh", settings.hourly_cron, "UTC", "recent", settings.organizations_per_run,
            f"Every hour: recent refresh ({RefreshParameters.lookback_days}-day look-back) of every organization.",
        ),
        refresh_schedule(
            "nightly_full_refresh", settings.nightly_cron, settings.nightly_timezone, "full",
            settings.organizations_per_run, "Every night: full refresh of every organization.",
        ),
    ]
