"""One refresh batch as both the asset and the command line run it: the schema and view
made current, the refresh with its success row committed in the same transaction, the
failure row when it fails for good, and a full refresh's retention of
``customer_segment_changes``. Nothing of Dagster here: the caller passes how to
connect, where messages go, and whether a failure is final (a retried one is recorded
by the attempt that fails last)."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import psycopg

from customer_analytics_pipeline.warehouse.checks.outcomes import failed_check_summaries
from customer_analytics_pipeline.warehouse.errors import describe
from customer_analytics_pipeline.warehouse.migrations import ensure_schema_current
from customer_analytics_pipeline.warehouse.organizations import listed, missing_organizations
from customer_analytics_pipeline.warehouse.refresh import (
    OrganizationsFailed,
    RefreshParameters,
    RefreshResult,
    normalize_organization_ids,
    refresh_customer_analytics,
)
from customer_analytics_pipeline.warehouse.run_history import record_failure, record_success
from customer_analytics_pipeline.warehouse.segment_history import delete_expired_segment_changes
from customer_analytics_pipeline.warehouse.views import VIEW_CODE_VERSION, VIEW_NAME, ensure_view

# connect(watch_lock_waits) -> an autocommit connection, closed on exit.
Connect = Callable[[bool], AbstractContextManager[psycopg.Connection]]


class NoKnownOrganization(ValueError):
    """No organization of the batch has an organizations row: it would refresh nothing
    and report success."""


@dataclass(frozen=True)
class BatchRefresh:
    """What a committed batch did: the refresh, and the change rows retention deleted
    (None when it did not run, or ``retention_error`` says why it stopped)."""

    result: RefreshResult
    expired_rows_deleted: int | None = None
    retention_error: str | None = None


def refresh_batch(
    connect: Connect,
    run_id: str,
    organization_ids: Sequence[str],
    parameters: RefreshParameters,
    segment_history_days: int,
    *,
    log: Callable[[str], None] = lambda message: None,
    warn: Callable[[str], None] = lambda message: None,
    is_final_failure: Callable[[BaseException], bool] = lambda error: True,
) -> BatchRefresh:
    """Refreshes ``organization_ids`` together (one by one when bad data in some must not
    block the others). Raises what failed (``OrganizationsFailed`` carries what still
    committed) after recording a failure row on a connection of its own when
    ``is_final_failure(error)``; a failure row that cannot be written is a ``warn``."""
    organization_ids = list(organization_ids)
    committed: list[str] = []
    failed_checks: list[dict] = []
    try:
        with connect(True) as conn:
            for migration in ensure_schema_current(conn):
                log(f"applied migration {migration.version:04d}_{migration.name}")
            refuse_unless_some_organization_exists(conn, organization_ids)
            if ensure_view(conn):
                log(f"view {VIEW_NAME} (re)created (definition {VIEW_CODE_VERSION})")
            try:
                result = refresh_customer_analytics(
                    conn, organization_ids, parameters, log=log,
                    before_commit=lambda conn, result: record_success(conn, result, run_id),
                )
            except OrganizationsFailed as failed:
                committed = [o.organization_id for o in failed.refreshed.organizations] if failed.refreshed else []
                if failed.audit is not None:
                    failed_checks = failed_check_summaries(failed.audit.outcomes, failed.audit.organization_ids)
                raise
            if parameters.mode != "full":
                return BatchRefresh(result)
            return expire_segment_history(conn, result, organization_ids, segment_history_days, warn)
    except Exception as error:
        if is_final_failure(error):
            not_recorded = record_failure_on_own_connection(
                connect, run_id, str(error) if isinstance(error, OrganizationsFailed) else describe(error),
                parameters.mode, organization_ids, committed, failed_checks,
            )
            if not_recorded:
                warn(f"could not record the failure in application_logs: {not_recorded}")
        raise


def refuse_unless_some_organization_exists(conn: psycopg.Connection, organization_ids: list[str]) -> None:
    """Some missing are left to the refresh, which reports them: an organization deleted
    since its partition was made."""
    organization_ids = normalize_organization_ids(organization_ids)
    missing = missing_organizations(conn, organization_ids)
    if len(missing) == len(organization_ids):
        raise NoKnownOrganization(
            f"the run resolves to no organization: no organizations row for its {len(missing)} "
            f"partition(s) {listed(missing)}"
        )


def expire_segment_history(
    conn: psycopg.Connection, result: RefreshResult, organization_ids: list[str], keep_days: int,
    warn: Callable[[str], None],
) -> BatchRefresh:
    """Retention, after the refresh has committed. A database error (a lock wait past
    lock_timeout, say) stopping it is a warning, left to the next full run: failing would
    retry a refresh whose rows are already committed."""
    try:
        return BatchRefresh(result, delete_expired_segment_changes(conn, organization_ids, keep_days))
    except psycopg.Error as error:
        message = describe(error)
        warn(f"customer_segment_changes retention stopped, left to the next full run: {message}")
        return BatchRefresh(result, retention_error=message)


def record_failure_on_own_connection(
    connect: Connect, run_id: str, cause: str, mode: str | None, organization_ids: Sequence[str],
    committed_organization_ids: Sequence[str] = (), failed_checks: Sequence[dict] = (),
) -> str | None:
    """Appends a refresh's failure row on a connection of its own (the refresh's may be
    gone: a lost connection, a session the server ended). Best effort: None when
    written, else why it could not be (the database is down, say)."""
    try:
        with connect(False) as conn:
            record_failure(conn, run_id, cause, mode, organization_ids, committed_organization_ids, failed_checks)
    except (psycopg.Error, ValueError) as error:  # ValueError: a malformed DATABASE_URL
        return describe(error)
    return None
