"""hourly_recent_refresh and nightly_full_refresh.

The nightly tick refreshes every organization partition in full; the hourly tick runs
`recent` only for the organizations that need it (source rows changed, a segment
boundary passed, no proof yet: ``warehouse/ticks.py``) and records every other one as
verified, with no run and no per-partition event. Both balance their runs by customers
(``customers_per_run``; an organization larger than that runs alone). Both run by
default once a daemon serves the code location; an operator can still stop them in the
UI, and that choice overrides the default.
"""

from collections.abc import Iterator, Sequence

from dagster import (
    AssetMaterialization,
    AssetObservation,
    DefaultScheduleStatus,
    RunConfig,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from customer_analytics_pipeline.defs.customer_analytics_asset import CUSTOMER_ANALYTICS_KEY, CustomerAnalyticsConfig
from customer_analytics_pipeline.defs.jobs import refresh_customer_analytics_job
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.refresh import RefreshMode, RefreshParameters
from customer_analytics_pipeline.warehouse.ticks import (
    OrganizationSize,
    TickSelection,
    balanced_batches,
    organization_sizes,
    select_organizations_due,
)

MODE_TAG = "customer_analytics/mode"
BATCH_TAG = "customer_analytics/batch"
ORGANIZATIONS_TAG = "customer_analytics/organizations"


def batches(keys: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices of ``keys`` (partition order) of at most ``size`` keys."""
    return [list(keys[start : start + size]) for start in range(0, len(keys), size)]


def run_requests(
    schedule_name: str, tick: str, mode: RefreshMode, keys: Sequence[str], batched: Sequence[Sequence[OrganizationSize]]
) -> Iterator[RunRequest]:
    """One run per batch (``batched`` in partition order). A batch of consecutive
    partitions is a partition-range run. A batch of scattered organizations (the hourly
    tick's) names them in its config and is tagged with its first one alone, so Dagster
    plans, marks and reports no partition between them. The tick is every run's
    ``as_of`` (one consistent instant) and part of its run key, so a tick is never
    launched twice."""
    position = {key: index for index, key in enumerate(keys)}
    for number, batch in enumerate(batched, 1):
        first, last = batch[0].organization_id, batch[-1].organization_id
        contiguous = position[last] - position[first] + 1 == len(batch)
        config = CustomerAnalyticsConfig(
            mode=mode, as_of=tick, organizations=None if contiguous else [o.organization_id for o in batch]
        )
        partition_tags = ({PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last} if contiguous
                          else {PARTITION_TAG: first})
        yield RunRequest(
            run_key=f"{schedule_name}:{tick}:{first}..{last}",
            run_config=RunConfig(ops={"customer_analytics": config}),
            tags={**partition_tags, MODE_TAG: mode, BATCH_TAG: f"{number}", ORGANIZATIONS_TAG: f"{len(batch)}"},
        )


def tick_metadata(selection: TickSelection, tick: str, runs: int) -> dict:
    """The tick-level record: counts only (no organization is listed)."""
    return {
        "tick_as_of": tick,
        "organizations_verified": selection.verified,
        "organizations_refreshed": len(selection.due),
        "customers_refreshed": sum(o.customers for o in selection.due),
        "runs": runs,
        **{f"due: {reason}": count for reason, count in selection.reasons().items()},
    }


def hourly_run_requests(
    context: ScheduleEvaluationContext, database: PostgresResource, schedule_name: str, settings: Settings
) -> Iterator[RunRequest | SkipReason]:
    """The organizations the tick must refresh, in runs balanced by size; the others are
    recorded as verified (in customer_analytics_refresh_state, and as one event on the
    asset). A quiet tick reports a materialization without partition, which is what
    keeps the asset's freshness policy green: "refreshed or verified within the window".
    A busy tick reports an observation: its runs' materializations are what count."""
    keys = context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    if not keys:
        yield SkipReason("no organization partitions yet (organization_partitions_sensor adds them)")
        return
    tick = context.scheduled_execution_time
    with database.connect() as conn:
        selection = select_organizations_due(conn, keys, RefreshParameters(mode="recent", as_of=tick))
    requests = list(run_requests(schedule_name, tick.isoformat(), "recent", keys,
                                 balanced_batches(selection.due, settings.customers_per_run)))
    metadata = tick_metadata(selection, tick.isoformat(), len(requests))
    summary = (f"{len(selection.due)} organization(s) to refresh in {len(requests)} run(s), "
               f"{selection.verified} verified unchanged")
    context.log.info(f"{schedule_name} at {tick.isoformat()}: {summary}")
    if selection.unknown:
        context.log.warning(f"{len(selection.unknown)} partition(s) have no organizations row; the sensor removes them")
    if not requests:
        context.instance.report_runless_asset_event(
            AssetMaterialization(asset_key=CUSTOMER_ANALYTICS_KEY, description=f"hourly tick: {summary}",
                                 metadata=metadata)
        )
        yield SkipReason(f"nothing changed: {summary}")
        return
    context.instance.report_runless_asset_event(
        AssetObservation(asset_key=CUSTOMER_ANALYTICS_KEY, description=f"hourly tick: {summary}", metadata=metadata)
    )
    yield from requests


def nightly_run_requests(
    context: ScheduleEvaluationContext, database: PostgresResource, schedule_name: str, settings: Settings
) -> Iterator[RunRequest | SkipReason]:
    """Every organization partition, in full, in runs balanced by size."""
    keys = context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    if not keys:
        yield SkipReason("no organization partitions yet (organization_partitions_sensor adds them)")
        return
    with database.connect() as conn:
        sizes = organization_sizes(conn, keys)
    if not sizes:
        yield SkipReason(f"none of the {len(keys)} organization partition(s) has an organizations row")
        return
    yield from run_requests(schedule_name, context.scheduled_execution_time.isoformat(), "full", keys,
                            balanced_batches(sizes, settings.customers_per_run))


def build_schedules(settings: Settings) -> list[ScheduleDefinition]:
    """hourly_recent_refresh and nightly_full_refresh, as the settings time them."""

    @schedule(
        name="hourly_recent_refresh",
        cron_schedule=settings.hourly_cron,
        execution_timezone="UTC",
        job=refresh_customer_analytics_job,
        description="Every hour: recent refresh of the organizations whose source rows changed or whose segments "
        "time moves; every other organization is verified unchanged, with no run.",
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def hourly_recent_refresh(context: ScheduleEvaluationContext, database: PostgresResource):
        yield from hourly_run_requests(context, database, "hourly_recent_refresh", settings)

    @schedule(
        name="nightly_full_refresh",
        cron_schedule=settings.nightly_cron,
        execution_timezone=settings.nightly_timezone,
        job=refresh_customer_analytics_job,
        description="Every night: full refresh of every organization.",
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def nightly_full_refresh(context: ScheduleEvaluationContext, database: PostgresResource):
        yield from nightly_run_requests(context, database, "nightly_full_refresh", settings)

    return [hourly_recent_refresh, nightly_full_refresh]
