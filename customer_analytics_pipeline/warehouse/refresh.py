"""The customer_analytics refresh: set-based SQL inside PostgreSQL, one transaction per
batch (per organization when bad data or a failed audit in one must not block the
others). Each transaction audits the rows it wrote before it commits
(``warehouse/checks/audit.py``): write, audit, publish.

Python here only sequences the SQL files of ``sql/refresh`` and counts what they did;
every metric is defined once, in ``compute_customer_rows.sql``.
"""

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

import psycopg
from psycopg import sql

from customer_analytics_pipeline.warehouse.checks.audit import Audit, audit_organizations
from customer_analytics_pipeline.warehouse.checks.outcomes import EVERY_ROW, AuditScope, sample_window
from customer_analytics_pipeline.warehouse.connection import set_local_settings
from customer_analytics_pipeline.warehouse.errors import describe
from customer_analytics_pipeline.warehouse.locks import ORGANIZATION_LOCK_NAMESPACE
from customer_analytics_pipeline.warehouse.migrations import available_migrations
from customer_analytics_pipeline.warehouse.organizations import organization_names
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_CONTENT_COLUMNS
from customer_analytics_pipeline.warehouse.sql_files import load_sql, sql_files_version

RefreshMode = Literal["full", "recent"]
REFRESH_MODES: tuple[RefreshMode, ...] = ("full", "recent")

# The refresh's SQL, step by step (sql/refresh/README.md says how the files share state).
LOCK_ORGANIZATIONS_SQL = "refresh/lock_organizations.sql"
SELECT_TARGETS_SQL = "refresh/select_targets.sql"
COMPUTE_FINGERPRINTS_SQL = "refresh/compute_fingerprints.sql"
SKIP_UNCHANGED_SQL = "refresh/skip_unchanged_targets.sql"
COMPUTE_ROWS_SQL = "refresh/compute_customer_rows.sql"
UPSERT_TEMPLATE_SQL = "refresh/upsert_customer_analytics.template.sql"
RECORD_FINGERPRINTS_SQL = "refresh/record_fingerprints.sql"
UPDATE_SEGMENTS_SQL = "refresh/update_segments.sql"
RECORD_STATE_SQL = "refresh/record_refresh_state.sql"
COUNT_SEGMENTS_SQL = "refresh/count_segments.sql"
COUNT_SEGMENT_CHANGES_SQL = "refresh/count_segment_changes.sql"
REFRESH_SQL_FILES = (LOCK_ORGANIZATIONS_SQL, SELECT_TARGETS_SQL, COMPUTE_FINGERPRINTS_SQL, SKIP_UNCHANGED_SQL,
                     COMPUTE_ROWS_SQL, UPSERT_TEMPLATE_SQL, RECORD_FINGERPRINTS_SQL, UPDATE_SEGMENTS_SQL,
                     RECORD_STATE_SQL, COUNT_SEGMENTS_SQL, COUNT_SEGMENT_CHANGES_SQL)
# The asset's code version: changes with any SQL the refresh runs, the migrations that
# shape what it writes, or the columns it writes.
REFRESH_CODE_VERSION = sql_files_version(
    [*REFRESH_SQL_FILES, *(m.path for m in available_migrations())], extra=",".join(CUSTOMER_ANALYTICS_CONTENT_COLUMNS)
)
# Seeds the source fingerprints and the organizations' proofs: a new code version makes
# every stored one stale, so the next tick refreshes every organization and `recent`
# recomputes every customer once after a deploy that changed the SQL.
FINGERPRINT_SEED = int(REFRESH_CODE_VERSION[:15], 16)

# The refresh transaction's settings. Its hash aggregates stay in memory for large
# organizations. JIT compiles the wide compute (about 140 functions) afresh in every
# batch, which costs more than it saves: compute measured 8% faster without it on
# 100,000 clients.
REFRESH_SETTINGS = {"work_mem": "256MB", "jit": "off"}
# Day counts beyond a century are certainly typos (and would overflow the hour math);
# as_of outside these years is too (and as_of plus or minus the day counts must stay a
# valid timestamp).
MAX_DAYS = 36_500
MIN_AS_OF = datetime(1900, 1, 1, tzinfo=UTC)
MAX_AS_OF = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RefreshParameters:
    """What a refresh computes: the mode, the instant segments are relative to, the windows."""

    mode: RefreshMode = "full"
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))
    new_days: int = 30
    active_days: int = 90
    at_risk_days: int = 180
    # The audit before commit reads every row, not only the rows the refresh wrote and
    # the sample of the others (an operator's full audit).
    audit_every_row: bool = False

    def __post_init__(self) -> None:
        if self.mode not in REFRESH_MODES:
            raise ValueError(f"mode must be one of {REFRESH_MODES}, got {self.mode!r}")
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (use parse_as_of for user input)")
        if not MIN_AS_OF <= self.as_of <= MAX_AS_OF:
            raise ValueError(
                f"as_of must be between {MIN_AS_OF.date()} and {MAX_AS_OF.date()}, got {self.as_of.isoformat()}"
            )
        for name in ("new_days", "active_days", "at_risk_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
                raise ValueError(f"{name} must be a whole number of days from 0 to {MAX_DAYS}, got {value!r}")


@dataclass(frozen=True)
class OrganizationRefresh:
    """What a refresh did to one organization's rows."""

    organization_id: str
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    row_count: int
    previous_as_of: datetime | None = None  # the as_of of the organization's previous refresh

    @property
    def rows_unchanged(self) -> int:
        return self.row_count - self.rows_inserted - self.rows_updated


@dataclass(frozen=True)
class SegmentMovement:
    """How many customers one refresh moved from one segment to another (``from_segment``
    None: customers that got their first row)."""

    from_segment: str | None
    to_segment: str
    customers: int


@dataclass(frozen=True)
class RefreshResult:
    """What one batch's refresh did, for the materialization metadata."""

    mode: RefreshMode
    as_of: datetime
    organizations: tuple[OrganizationRefresh, ...]
    unknown_organization_ids: tuple[str, ...]
    rows_recomputed: int
    segment_counts: dict[str, int]
    segment_movements: tuple[SegmentMovement, ...]
    duration_seconds: float  # the refresh's statements, the audit not included
    refreshed_at: datetime | None = None  # the transaction's now() (None: several transactions)
    audit: Audit | None = None  # the ERROR checks on these rows, before they were committed

    @property
    def segment_changes(self) -> int:
        """Change rows this refresh wrote to customer_segment_changes."""
        return sum(m.customers for m in self.segment_movements)

    def customers_moved_into(self, segment: str) -> int:
        """Customers whose segment this refresh changed to ``segment`` (first rows included)."""
        return sum(m.customers for m in self.segment_movements if m.to_segment == segment)

    def total(self, attribute: str) -> int:
        """Sum of an OrganizationRefresh count over the batch."""
        return sum(getattr(organization, attribute) for organization in self.organizations)

    @property
    def rows_changed(self) -> int:
        return self.total("rows_inserted") + self.total("rows_updated") + self.total("rows_deleted")

    @classmethod
    def combine(cls, parameters: "RefreshParameters", results: Sequence["RefreshResult"]) -> "RefreshResult":
        """One result for organizations refreshed in separate transactions."""
        segment_counts: Counter[str] = Counter()
        movements: Counter[tuple[str | None, str]] = Counter()
        for result in results:
            segment_counts.update(result.segment_counts)
            movements.update({(m.from_segment, m.to_segment): m.customers for m in result.segment_movements})
        return cls(
            mode=parameters.mode,
            as_of=parameters.as_of,
            organizations=tuple(o for result in results for o in result.organizations),
            unknown_organization_ids=tuple(o for result in results for o in result.unknown_organization_ids),
            rows_recomputed=sum(result.rows_recomputed for result in results),
            segment_counts=dict(sorted(segment_counts.items())),
            segment_movements=tuple(
                SegmentMovement(from_segment, to_segment, customers)
                for (from_segment, to_segment), customers in sorted(movements.items(), key=_movement_order)
            ),
            duration_seconds=sum(result.duration_seconds for result in results),
            audit=Audit.combine([result.audit for result in results if result.audit is not None]),
        )


def _movement_order(item: tuple[tuple[str | None, str], int]) -> tuple[str, str]:
    """First rows (from None) first, then by segment names, as count_segment_changes.sql orders."""
    (from_segment, to_segment), _ = item
    return (from_segment or "", to_segment)


@dataclass(frozen=True)
class OrganizationFailure:
    """An organization whose refresh failed, on bad data or on its audit, and kept its
    previous rows (and its previous change log)."""

    organization_id: str
    square_customer_id: str | None  # the customer whose rows break it, when one was found
    cause: str
    organization_name: str | None = None  # organizations.name, when it has a row
    audit: Audit | None = None  # the audit that rejected its rows (None: bad data)

    def __str__(self) -> str:
        name = f" ({self.organization_name})" if self.organization_name is not None else ""
        customer = f", customer {self.square_customer_id}" if self.square_customer_id else ""
        return f"organization {self.organization_id}{name}{customer}: {self.cause}"


class OrganizationsFailed(Exception):
    """Some organizations of a batch failed on bad data or on their audit; ``refreshed``
    (the others) committed."""

    def __init__(self, refreshed: "RefreshResult | None", failures: Sequence[OrganizationFailure]):
        self.refreshed = refreshed
        self.failures = tuple(failures)
        committed = len(refreshed.organizations) if refreshed else 0
        audited = any(f.audit is not None for f in self.failures)
        bad_data = any(f.audit is None for f in self.failures)
        why = "on bad data or a failed audit" if audited and bad_data else "on a failed audit" if audited \
            else "on bad data"
        super().__init__(
            f"refresh failed for {len(self.failures)} organization(s) {why}, "
            f"{committed} other organization(s) committed: " + "; ".join(str(f) for f in self.failures[:10])
        )

    @property
    def audit(self) -> Audit | None:
        """The audit of every organization audited: the committed ones and the rejected ones."""
        committed = [self.refreshed.audit] if self.refreshed and self.refreshed.audit else []
        return Audit.combine([*committed, *(f.audit for f in self.failures if f.audit is not None)])


class AuditRejected(Exception):
    """Raised inside a refresh's transaction to roll it back: ``result.audit`` failed."""

    def __init__(self, result: "RefreshResult"):
        self.result = result
        super().__init__(f"audit failed for {result.audit.rejected_organizations() if result.audit else []}")


def parse_as_of(text: str) -> datetime:
    """An ISO 8601 instant; without a UTC offset it is taken as UTC (docs/contract.md)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ValueError(f"as_of must be an ISO 8601 timestamp such as 2026-05-20T15:00:00Z, got {text!r}") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalize_organization_ids(organization_ids: Sequence[str]) -> list[str]:
    """Sorted, de-duplicated lowercase UUID texts; a malformed key is an error, not a skip."""
    normalized = set()
    for key in organization_ids:
        try:
            normalized.add(str(uuid.UUID(str(key))))
        except ValueError as error:
            raise ValueError(f"organization partition key {key!r} is not a UUID") from error
    if not normalized:
        raise ValueError("a refresh needs at least one organization")
    return sorted(normalized)


def _upsert_statement() -> sql.Composed:
    columns = [sql.Identifier(name) for name in CUSTOMER_ANALYTICS_CONTENT_COLUMNS]
    return sql.SQL(load_sql(UPSERT_TEMPLATE_SQL)).format(
        columns=sql.SQL(", ").join(columns),
        excluded_columns=sql.SQL(", ").join(sql.SQL("excluded.{}").format(c) for c in columns),
        new_columns=sql.SQL(", ").join(sql.SQL("r.{}").format(c) for c in columns),
        current_columns=sql.SQL(", ").join(sql.SQL("ca.{}").format(c) for c in columns),
    )


def refresh_customer_analytics(
    conn: psycopg.Connection,
    organization_ids: Sequence[str],
    parameters: RefreshParameters,
    log: Callable[[str], None] = lambda message: None,
    before_commit: Callable[[psycopg.Connection, "RefreshResult"], None] = lambda conn, result: None,
) -> RefreshResult:
    """Refreshes customer_analytics for a batch of organizations, auditing its rows
    before it commits them.

    The batch is tried in one transaction: readers see all of its new rows or none.
    After writing, the transaction audits what it wrote (the ERROR checks,
    ``warehouse/checks/audit.py``). When some organizations fail the audit, or bad data
    in one makes the refresh fail (a PostgreSQL data error such as an overflowing sum),
    the transaction is rolled back and each organization is refreshed and audited again
    in a transaction of its own, so the healthy ones commit and the others keep their
    previous rows; then ``OrganizationsFailed`` names each failed organization and why
    (the customer whose data broke it, or the checks its rows failed). Any other error
    rolls the whole batch back and propagates. ``before_commit(conn, result)`` runs
    inside the transaction that commits the last organization of the batch, after its
    audit (the run-history row is written there).
    """
    if not conn.autocommit:
        raise ValueError("refresh_customer_analytics manages its own transaction: pass an autocommit connection")
    organization_ids = normalize_organization_ids(organization_ids)
    try:
        with conn.transaction():
            result = _refresh_and_audit(conn, organization_ids, parameters, log)
            before_commit(conn, result)
        return result
    except psycopg.errors.DataError as error:
        if len(organization_ids) == 1:
            raise OrganizationsFailed(None, [_failure_of(conn, organization_ids[0], parameters, error)]) from error
        log(f"bad data in the batch ({describe(error)}); refreshing its organizations one by one")
    except AuditRejected as rejected:
        audit = rejected.result.audit
        failing = audit.rejected_organizations()
        if len(failing) == len(audit.organization_ids):  # alone, each would fail the same way
            raise OrganizationsFailed(None, _audit_failures(conn, audit)) from None
        log(f"{len(failing)} organization(s) failed the audit ({audit.problems()}); "
            "refreshing the batch's organizations one by one")
    refreshed, failures = [], []
    for organization_id in organization_ids:
        try:
            with conn.transaction():
                refreshed.append(_refresh_and_audit(conn, [organization_id], parameters, log))
        except psycopg.errors.DataError as error:
            failures.append(_failure_of(conn, organization_id, parameters, error))
            log(f"organization {organization_id} kept its previous rows: {failures[-1].cause}")
        except AuditRejected as rejected:
            failures += _audit_failures(conn, rejected.result.audit)
            log(f"organization {organization_id} kept its previous rows: {failures[-1].cause}")
    result = RefreshResult.combine(parameters, refreshed)
    if failures:
        raise OrganizationsFailed(result, failures)
    with conn.transaction():
        before_commit(conn, result)
    return result


def _refresh_and_audit(
    conn: psycopg.Connection, organization_ids: list[str], parameters: RefreshParameters, log: Callable[[str], None]
) -> RefreshResult:
    """The refresh, then the audit of what it wrote, inside the caller's transaction;
    ``AuditRejected`` (which rolls that transaction back) when the audit fails."""
    result = _refresh_in_transaction(conn, organization_ids, parameters, log)
    audit = audit_organizations(conn, [o.organization_id for o in result.organizations],
                                _audit_scope(result, parameters))
    result = replace(result, audit=audit)
    if not audit.passed:
        raise AuditRejected(result)
    log(f"audit passed ({len(audit.outcomes)} checks on {len(audit.organization_ids)} organization(s)) "
        f"in {audit.seconds:.2f}s")
    return result


def _audit_scope(result: RefreshResult, parameters: RefreshParameters) -> AuditScope:
    """Every row the refresh wrote (stamped with its transaction's now()) and, of the
    others, the sample buckets of the hours since each organization's previous refresh
    (every row, when asked to)."""
    if parameters.audit_every_row:
        return EVERY_ROW
    return AuditScope(result.refreshed_at, {o.organization_id: sample_window(o.previous_as_of, parameters.as_of)
                                            for o in result.organizations})


def _audit_failures(conn: psycopg.Connection, audit: Audit) -> list[OrganizationFailure]:
    """One failure per organization the audit rejected, named (read after the rollback)."""
    rejected = audit.rejected_organizations()
    names = organization_names(conn, rejected)
    return [
        OrganizationFailure(organization_id, None, f"audit failed: {own.problems()}",
                            organization_name=names.get(organization_id), audit=own)
        for organization_id in rejected
        for own in [audit.of_organization(organization_id)]
    ]


def _refresh_in_transaction(
    conn: psycopg.Connection, organization_ids: list[str], parameters: RefreshParameters, log: Callable[[str], None]
) -> RefreshResult:
    """Every step of one refresh, inside the caller's transaction."""
    params = _sql_parameters(organization_ids, parameters)
    started = time.perf_counter()
    set_local_settings(conn, REFRESH_SETTINGS)
    conn.execute(load_sql(LOCK_ORGANIZATIONS_SQL), params)
    log(f"locked {len(organization_ids)} organization(s); selecting customers ({parameters.mode})")

    conn.execute(load_sql(SELECT_TARGETS_SQL), params)
    conn.execute("ANALYZE refresh_targets")
    conn.execute(load_sql(COMPUTE_FINGERPRINTS_SQL), params)
    if parameters.mode == "recent":
        skipped = conn.execute(load_sql(SKIP_UNCHANGED_SQL), params).rowcount
        log(f"{skipped} customer(s) of the recent set skipped: none of their source rows changed")
    compute = conn.execute(load_sql(COMPUTE_ROWS_SQL), params)
    rows_recomputed = compute.rowcount
    # Only the key feeds a plan (the upsert's joins); the other columns' statistics would
    # cost a sample of every wide column (about a tenth of the refresh at 1M clients).
    conn.execute("ANALYZE refresh_rows (organization_id, square_customer_id)")
    log(f"recomputed {rows_recomputed} customer(s); writing changes")

    written = {org: (ins, upd) for org, ins, upd in conn.execute(_upsert_statement(), params)}
    conn.execute(load_sql(RECORD_FINGERPRINTS_SQL), params)
    segments_moved = {}
    if parameters.mode == "recent":
        segments_moved = dict(conn.execute(load_sql(UPDATE_SEGMENTS_SQL), params).fetchall())
    state = conn.execute(load_sql(RECORD_STATE_SQL), params).fetchall()
    organizations = []
    for organization_id, row_count, previous_row_count, previous_as_of in state:
        inserted, updated = written.get(organization_id, (0, 0))
        organizations.append(
            OrganizationRefresh(
                organization_id=organization_id,
                rows_inserted=inserted,
                rows_updated=updated + segments_moved.get(organization_id, 0),
                # Client deletions cascade to customer_analytics between refreshes:
                # what the previous refresh left, plus inserts, minus what is there now.
                rows_deleted=0 if previous_row_count is None else previous_row_count + inserted - row_count,
                row_count=row_count,
                previous_as_of=previous_as_of,
            )
        )
    known = {organization.organization_id for organization in organizations}
    # The transaction's now(), read here (on Citus: on the coordinator), which the change
    # rows were written with (count_segment_changes.sql says why it is bound).
    changes_params = {**params, "refreshed_at": conn.execute("SELECT now()").fetchone()[0]}
    return RefreshResult(
        mode=parameters.mode,
        as_of=parameters.as_of,
        organizations=tuple(organizations),
        unknown_organization_ids=tuple(o for o in organization_ids if o not in known),
        rows_recomputed=rows_recomputed,
        segment_counts=dict(conn.execute(load_sql(COUNT_SEGMENTS_SQL), params).fetchall()),
        segment_movements=tuple(
            SegmentMovement(*row) for row in conn.execute(load_sql(COUNT_SEGMENT_CHANGES_SQL), changes_params)
        ),
        duration_seconds=time.perf_counter() - started,
        refreshed_at=changes_params["refreshed_at"],
    )


def _sql_parameters(organization_ids: list[str], parameters: RefreshParameters) -> dict:
    return {
        "organization_ids": organization_ids,
        "lock_namespace": ORGANIZATION_LOCK_NAMESPACE,
        "seed": FINGERPRINT_SEED,
        "as_of": parameters.as_of,
        "new_days": parameters.new_days,
        "active_days": parameters.active_days,
        "at_risk_days": parameters.at_risk_days,
        "mode": parameters.mode,
    }


def _failure_of(
    conn: psycopg.Connection, organization_id: str, parameters: RefreshParameters, error: psycopg.Error
) -> "OrganizationFailure":
    """The organization and its name, the customer whose rows break its refresh, and the cause."""
    customer = _customer_breaking_refresh(conn, organization_id, parameters)
    name = organization_names(conn, [organization_id]).get(organization_id)
    return OrganizationFailure(organization_id, customer, describe(error), organization_name=name)


def _customer_breaking_refresh(
    conn: psycopg.Connection, organization_id: str, parameters: RefreshParameters
) -> str | None:
    """Bisects the organization's customers to one whose metrics fail to compute; None
    when the metrics of every customer compute (the error was elsewhere). Read-only:
    everything it creates is rolled back. About twice the cost of one refresh, paid
    only when a refresh has already failed."""
    params = _sql_parameters([organization_id], parameters)
    with conn.transaction(force_rollback=True):
        conn.execute(load_sql(SELECT_TARGETS_SQL), params)
        customers = [row[0] for row in conn.execute(
            "SELECT square_customer_id FROM refresh_targets ORDER BY square_customer_id COLLATE \"C\"")]
        conn.execute("DROP TABLE refresh_targets")
        while len(customers) > 1:
            half = customers[: len(customers) // 2]
            customers = half if _metrics_fail(conn, params, half) else customers[len(half):]
        return customers[0] if customers and _metrics_fail(conn, params, customers) else None


def _metrics_fail(conn: psycopg.Connection, params: dict, customer_ids: list[str]) -> bool:
    """Whether computing the metrics of these customers raises a data error (rolled back)."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "CREATE TEMP TABLE refresh_targets ON COMMIT DROP AS"
                " SELECT organization_id, square_customer_id"
                " FROM unnest(%(organization_ids)s::uuid[]) AS organization_id,"
                " unnest(%(customer_ids)s::text[]) AS square_customer_id",
                {**params, "customer_ids": customer_ids},
            )
            conn.execute(load_sql(COMPUTE_ROWS_SQL), params)
    except psycopg.errors.DataError:
        return True
    return False
