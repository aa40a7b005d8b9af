"""The ``customer_analytics`` asset and ``customer_segment_changes`` beside it: one step
refreshes the table for the run's organizations and, in the same transaction, logs the
segment changes it made and audits its rows with the ERROR checks before it commits
(write-audit-publish: an organization that fails keeps its previous rows); after the
commit it evaluates the two checks that cannot roll a refresh back, and reports all
eight (docs/contract.md).

A run covers a range of organization partitions, or, for the hourly tick's organizations
scattered over the partitions, names them in ``organizations`` (tagged with the first
one's partition). A range run yields both outputs, whose per-partition events Dagster
writes in batches, each organization's partition with its own counts
(``partition_events.py``); a run of listed organizations logs one materialization of
each table per organization instead, as one batch (no event for the partitions between
them). The view needs no step: the refresh keeps its definition current, and check 8
runs here."""

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Optional

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Config,
    DagsterEvent,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)
from pydantic import Field

from customer_analytics_pipeline.defs.checks import report_outcomes
from customer_analytics_pipeline.defs.failures import (
    RETRY_ON_TRANSIENT_ERRORS,
    database_failures_as_dagster_failures,
    record_failure_on_own_connection,
    will_retry,
)
from customer_analytics_pipeline.defs.metadata import column_schema
from customer_analytics_pipeline.defs.partition_events import batched_materializations, set_partition_metadata
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    organizations_partitions,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.defs.source_assets import source_keys_read_by
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.batch_refresh import NoKnownOrganization, refresh_batch
from customer_analytics_pipeline.warehouse.checks.audit import Audit
from customer_analytics_pipeline.warehouse.checks.evaluation import (
    CUSTOMER_ANALYTICS_CHECKS,
    VIEW_CHECK,
    VIEW_CHECK_DESCRIPTION,
    checks_after_publish,
)
from customer_analytics_pipeline.warehouse.errors import describe
from customer_analytics_pipeline.warehouse.organizations import organization_names
from customer_analytics_pipeline.warehouse.refresh import (
    REFRESH_CODE_VERSION,
    OrganizationRefresh,
    OrganizationsFailed,
    RefreshMode,
    RefreshParameters,
    RefreshResult,
    parse_as_of,
)
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_TABLE, SEGMENT_CHANGES_TABLE
from customer_analytics_pipeline.warehouse.source_tables import REFRESH

# Dagster concurrency pool capping refresh steps that hit the database at once (its limit
# is set in dagster.yaml).
DATABASE_POOL = "customer_analytics_database"
CUSTOMER_ANALYTICS_KEY = AssetKey(CUSTOMER_ANALYTICS_TABLE)
SEGMENT_CHANGES_KEY = AssetKey(SEGMENT_CHANGES_TABLE)
# The segments whose inflow the UI plots over time: the customers a win-back can still
# reach, and the ones it could not.
WATCHED_SEGMENTS = ("AT_RISK", "LOST")


class CustomerAnalyticsConfig(Config):
    """Run config of a refresh (every key optional; an unknown key is a config error)."""

    mode: RefreshMode = Field(
        default=RefreshParameters.mode,
        description="full: every customer recomputed; recent: only customers whose source rows changed, "
        "every other row gets its segment.",
    )
    as_of: Optional[str] = Field(
        default=None, description="ISO 8601 instant segments are relative to (no offset = UTC); default: run start."
    )
    new_days: int = Field(
        default=RefreshParameters.new_days, description="NEW if first_booking_at is within this many days of as_of."
    )
    active_days: int = Field(
        default=RefreshParameters.active_days, description="ACTIVE if last_booking_at is within this many days."
    )
    at_risk_days: int = Field(
        default=RefreshParameters.at_risk_days, description="AT_RISK if last_booking_at is within this many days."
    )
    organizations: Optional[list[str]] = Field(
        default=None,
        description="These organizations (the hourly tick's changed ones, the run's partition among them) "
        "instead of the run's partitions; each gets its own materialization.",
    )
    audit_every_row: bool = Field(
        default=False,
        description="Audit every row of the organizations before commit, not only the rows the refresh wrote "
        "and a rotating sample of the others.",
    )


def run_start(context: AssetExecutionContext) -> datetime:
    """When the run started (stable across step retries): the default as_of."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = record.start_time if record else None
    return datetime.fromtimestamp(started, tz=UTC) if started else datetime.now(UTC)


def refresh_parameters(config: CustomerAnalyticsConfig, run_started_at: datetime) -> RefreshParameters:
    """Validated refresh parameters; bad config fails the run with a plain message, unretried."""
    try:
        return RefreshParameters(
            mode=config.mode,
            as_of=parse_as_of(config.as_of) if config.as_of else run_started_at,
            new_days=config.new_days,
            active_days=config.active_days,
            at_risk_days=config.at_risk_days,
            audit_every_row=config.audit_every_row,
        )
    except ValueError as error:
        raise Failure(description=f"invalid customer_analytics config: {error}", allow_retries=False) from error


def organization_metadata(organization: OrganizationRefresh, names: Mapping[str, str]) -> dict:
    """What the refresh did to one organization's rows, and its name: that partition's own
    metadata."""
    return {
        "organization_name": names.get(organization.organization_id, ""),
        "dagster/row_count": organization.row_count,
        "rows_inserted": organization.rows_inserted,
        "rows_updated": organization.rows_updated,
        "rows_deleted": organization.rows_deleted,
        "rows_unchanged": organization.rows_unchanged,
    }


def batch_metadata(result: RefreshResult) -> dict:
    """Totals of the run's whole batch, labelled as such (every partition of the run
    carries them): plain numbers, so thousands of partition events stay small."""
    return {
        "batch_mode": result.mode,
        "batch_as_of": result.as_of.isoformat(),
        "batch_organizations": len(result.organizations),
        "batch_rows_recomputed": result.rows_recomputed,
        "batch_rows_inserted": result.total("rows_inserted"),
        "batch_rows_updated": result.total("rows_updated"),
        "batch_rows_deleted": result.total("rows_deleted"),
        "batch_rows": result.total("row_count"),
        "batch_duration_seconds": round(result.duration_seconds, 3),
    }


def run_summary_metadata(result: RefreshResult, schema: TableSchema) -> dict:
    """The batch's segment mix and the table's column schema: large values, carried by
    one partition's event per run (the run's last), not by all of them."""
    return {"batch_segment_counts": MetadataValue.json(result.segment_counts), "dagster/column_schema": schema}


def segment_changes_metadata(result: RefreshResult, expired_rows_deleted: int | None) -> dict:
    """The batch's movements as a table, and the inflow into AT_RISK and LOST as numbers
    the UI plots over time (batch totals, carried by the run's last partition event)."""
    metadata = {
        "batch_movements": MetadataValue.table(
            [TableRecord({"from_segment": m.from_segment or "(first row)", "to_segment": m.to_segment,
                          "customers": m.customers}) for m in result.segment_movements],
            schema=TableSchema(columns=[TableColumn("from_segment", "string"), TableColumn("to_segment", "string"),
                                        TableColumn("customers", "int")]),
        ),
        "batch_change_rows_written": result.segment_changes,
        **{f"batch_customers_into_{segment.lower()}": result.customers_moved_into(segment)
           for segment in WATCHED_SEGMENTS},
        "batch_as_of": result.as_of.isoformat(),
    }
    if expired_rows_deleted is not None:
        metadata["batch_expired_rows_deleted"] = expired_rows_deleted
    return metadata


def record_final_failure(
    context: AssetExecutionContext, database: PostgresResource, error: BaseException, mode: str | None,
    committed_organization_ids: list[str], organization_ids: list[str] | None,
) -> None:
    """Appends the failure to application_logs unless the RetryPolicy will try again; it
    names ``organization_ids`` (the run's config list), else the run's partitions.

    Best effort: if the database is what failed, the run-failure sensor records it later.
    """
    if will_retry(error, context.retry_number):
        return
    cause = error.description if isinstance(error, Failure) else describe(error)
    not_recorded = record_failure_on_own_connection(
        database, context.run.run_id, cause, mode, organization_ids or context.partition_keys,
        committed_organization_ids,
    )
    if not_recorded:
        context.log.warning(f"could not record the failure in application_logs: {not_recorded}")


def organization_materializations(
    result: RefreshResult, expired_rows_deleted: int | None, schema: TableSchema | None, names: Mapping[str, str]
) -> Iterator[AssetMaterialization]:
    """One materialization of each table per organization of ``result``, with that
    organization's own counts (the run's last one also carries the batch summary)."""
    last = result.organizations[-1].organization_id if result.organizations else None
    for organization in result.organizations:
        summary = organization.organization_id == last
        yield AssetMaterialization(
            asset_key=CUSTOMER_ANALYTICS_KEY,
            partition=organization.organization_id,
            metadata={**organization_metadata(organization, names), **batch_metadata(result),
                      **(run_summary_metadata(result, schema) if summary and schema is not None else {})},
        )
        yield AssetMaterialization(
            asset_key=SEGMENT_CHANGES_KEY,
            partition=organization.organization_id,
            metadata=segment_changes_metadata(result, expired_rows_deleted) if summary
            else {"batch_as_of": result.as_of.isoformat()},
        )


def range_outputs(
    context: AssetExecutionContext, result: RefreshResult, expired_rows_deleted: int | None, schema: TableSchema,
    names: Mapping[str, str],
) -> Iterator[MaterializeResult]:
    """Both outputs of a partition-range run: Dagster writes their per-partition events in
    batches; each organization's partition carries its own counts (the last one also the
    batch summary), every partition the batch totals."""
    last = result.organizations[-1].organization_id if result.organizations else None
    set_partition_metadata(context, CUSTOMER_ANALYTICS_KEY, {
        o.organization_id: {**organization_metadata(o, names),
                            **(run_summary_metadata(result, schema) if o.organization_id == last else {})}
        for o in result.organizations
    })
    if last is not None:
        set_partition_metadata(context, SEGMENT_CHANGES_KEY, {last: segment_changes_metadata(result,
                                                                                          expired_rows_deleted)})
    yield MaterializeResult(asset_key=CUSTOMER_ANALYTICS_KEY, metadata=batch_metadata(result))
    yield MaterializeResult(asset_key=SEGMENT_CHANGES_KEY, metadata={"batch_as_of": result.as_of.isoformat()})


def partial_failure(context: AssetExecutionContext, failed: OrganizationsFailed) -> Failure:
    """The run's failure naming each organization that kept its previous rows and why:
    the customer whose data broke it and the cause, or (its name too) the checks its
    rows failed before commit, their failing rows and the first failing customers."""
    for failure in failed.failures:
        context.log.error(f"customer_analytics kept the previous rows of {failure}")
    return Failure(
        description=str(failed),
        metadata={
            "failed_organizations": MetadataValue.json(
                [{"organization_id": f.organization_id, "organization_name": f.organization_name,
                  "square_customer_id": f.square_customer_id, "cause": f.cause}
                 for f in failed.failures[:100]]
            ),
            "committed_organizations": len(failed.refreshed.organizations) if failed.refreshed else 0,
        },
        allow_retries=False,
    )


def no_organization_in_run(tags: Mapping[str, str]) -> str:
    """Why a run has no organization partition to refresh."""
    if PARTITION_RANGE_START_TAG in tags:
        return (f"the run resolves to no organization: its partition range {tags[PARTITION_RANGE_START_TAG]}.."
                f"{tags.get(PARTITION_RANGE_END_TAG)} holds no partition (ranges follow partition order: "
                "is its start after its end?)")
    return "the run resolves to no organization: launch it for organization partitions"


def organizations_of_step(context: AssetExecutionContext, config: CustomerAnalyticsConfig) -> list[str]:
    """The organizations this step refreshes: ``config.organizations`` when given (known
    organization partitions, the run's own among them), else every partition of the run."""
    partition_keys = context.partition_keys
    if config.organizations is None:
        return list(partition_keys)
    known = set(context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME))
    problems = [f"not an organization partition: {key}" for key in config.organizations if key not in known]
    listed = set(config.organizations)
    problems += [f"the run's partition {key} is not listed" for key in partition_keys if key not in listed]
    if problems:
        raise Failure(description="invalid customer_analytics config: organizations: " + "; ".join(problems[:10]),
                      allow_retries=False)
    return list(config.organizations)


def check_results(
    context: AssetExecutionContext, database: PostgresResource, audit: Audit, committed_organization_ids: list[str]
) -> list[AssetCheckResult]:
    """The eight checks' results: the ERROR checks as the refresh audited them before
    its commit (on every organization it audited, rolled-back ones included), check 4's
    WARN rule and check 8 on the organizations that committed. Failures are logged and
    recorded in application_logs (``report_outcomes``)."""
    with database_failures_as_dagster_failures("customer_analytics checks", context.retry_number), \
            database.connect(watch_lock_waits=True) as conn:
        segment_shift, view = checks_after_publish(conn, committed_organization_ids)
        outcomes = [segment_shift if o.check_name == segment_shift.check_name and o.passed else o
                    for o in audit.outcomes]
        return report_outcomes(context, conn, [*outcomes, view], list(audit.organization_ids))


def refresh_organizations(
    context: AssetExecutionContext, config: CustomerAnalyticsConfig, database: PostgresResource, settings: Settings
) -> Iterator[DagsterEvent | MaterializeResult | AssetCheckResult]:
    """Refreshes the run's organizations together, in one transaction that audits its
    rows before it commits (per organization when bad data or a failed audit in some
    must not block the others); a full run then deletes the batch's change rows past the
    history window (``batch_refresh``); then the eight checks' results. An organization
    that failed its audit fails the step (no retry: the same rows would fail again)
    after every result is reported."""
    try:
        parameters = refresh_parameters(config, run_start(context))
        organization_ids = organizations_of_step(context, config)
        if not organization_ids:
            raise Failure(description=no_organization_in_run(context.run.tags), allow_retries=False)
    except Exception as error:
        record_final_failure(context, database, error, config.mode, [], config.organizations)
        raise
    context.log.info(
        f"refreshing {len(organization_ids)} organization(s), mode={parameters.mode}, "
        f"as_of={parameters.as_of.isoformat()}"
    )
    with database_failures_as_dagster_failures("customer_analytics refresh", context.retry_number):
        try:
            batch = refresh_batch(
                database.connect, context.run.run_id, organization_ids, parameters, settings.segment_history_days,
                log=context.log.info, warn=context.log.warning,
                is_final_failure=lambda error: not will_retry(error, context.retry_number),
            )
        except NoKnownOrganization as error:
            raise Failure(description=str(error), allow_retries=False) from None
        except OrganizationsFailed as failed:
            if failed.refreshed:
                yield from batched_materializations(
                    context, organization_materializations(failed.refreshed, None, None, {}))
            if failed.audit is not None:
                committed = [o.organization_id for o in failed.refreshed.organizations] if failed.refreshed else []
                yield from check_results(context, database, failed.audit, committed)
            raise partial_failure(context, failed) from None
        with database.connect() as conn:
            schema = column_schema(conn, CUSTOMER_ANALYTICS_TABLE)
            names = organization_names(conn, [o.organization_id for o in batch.result.organizations])
    result, expired_rows_deleted = batch.result, batch.expired_rows_deleted
    if result.unknown_organization_ids:
        context.log.warning(
            f"{len(result.unknown_organization_ids)} partition(s) have no organizations row and were left empty: "
            + ", ".join(result.unknown_organization_ids[:10])
        )
    context.log.info(
        f"customer_analytics: {result.total('row_count')} rows, {result.total('rows_inserted')} inserted, "
        f"{result.total('rows_updated')} updated, {result.total('rows_deleted')} deleted "
        f"in {result.duration_seconds:.2f}s; {result.segment_changes} segment change(s)"
        + (f", {expired_rows_deleted} change row(s) past {settings.segment_history_days} days deleted"
           if expired_rows_deleted is not None else "")
    )
    if config.organizations is None:
        yield from range_outputs(context, result, expired_rows_deleted, schema, names)
    else:
        yield from batched_materializations(
            context, organization_materializations(result, expired_rows_deleted, schema, names))
    if result.audit is not None:  # None only when no organization was refreshed
        yield from check_results(context, database, result.audit, [o.organization_id for o in result.organizations])


def build_customer_analytics(settings: Settings) -> AssetsDefinition:
    """Both tables as one step (one transaction writes them) with the eight checks, the pool,
    the freshness window and a code version that changes with any SQL the refresh runs
    or the schema it writes. Both depend on the source tables the refresh reads (external
    assets, never materialized by the refresh job, which selects these two alone)."""
    sources = source_keys_read_by(REFRESH)

    @multi_asset(
        # The op keeps the asset's name: run config is {"ops": {"customer_analytics": ...}}.
        name=CUSTOMER_ANALYTICS_TABLE,
        specs=[
            AssetSpec(
                CUSTOMER_ANALYTICS_KEY,
                freshness_policy=FreshnessPolicy.time_window(fail_window=settings.freshness_window),
                code_version=REFRESH_CODE_VERSION,
                kinds={"postgres", "sql"},
                group_name="customer_analytics",
                description="One row per customer per organization: bookings, payments, notes, referrals, segment.",
                deps=sources,
                # A run of listed organizations yields no output, only their materializations.
                skippable=True,
            ),
            AssetSpec(
                SEGMENT_CHANGES_KEY,
                code_version=REFRESH_CODE_VERSION,
                kinds={"postgres", "sql"},
                group_name="customer_analytics",
                description="One row per change of a customer's segment written by a refresh (first segment: from "
                "NULL), written with customer_analytics; kept for CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS.",
                deps=sources,
                skippable=True,
            ),
        ],
        check_specs=[
            *(AssetCheckSpec(name, asset=CUSTOMER_ANALYTICS_KEY, blocking=True, description=description)
              for name, description in CUSTOMER_ANALYTICS_CHECKS.items()),
            # The view reads customer_analytics; checked here, on the organizations just refreshed.
            AssetCheckSpec(VIEW_CHECK, asset=CUSTOMER_ANALYTICS_KEY, description=VIEW_CHECK_DESCRIPTION),
        ],
        partitions_def=organizations_partitions,
        # Single-run backfills are what let one run refresh many organizations together.
        backfill_policy=BackfillPolicy.single_run(),
        retry_policy=RETRY_ON_TRANSIENT_ERRORS,
        pool=DATABASE_POOL,
    )
    def refresh_customer_analytics_tables(
        context: AssetExecutionContext, config: CustomerAnalyticsConfig, database: PostgresResource
    ) -> Iterator[DagsterEvent | MaterializeResult | AssetCheckResult]:
        yield from refresh_organizations(context, config, database, settings)

    return refresh_customer_analytics_tables
