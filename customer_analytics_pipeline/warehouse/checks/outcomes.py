"""What a check found, without Dagster: the Dagster checks and the ``check`` command
report the same outcomes.

Every check SQL (``sql/checks/<check>.sql``) selects the failing rows as
``(organization_id, square_customer_id, problem, email_address, phone_number)`` among
the rows ``AuditScope`` names (every row, or what a refresh wrote and a rotating sample
of the rest); ``find_failures`` counts them per organization and keeps a few masked
samples. Only text comes out of the database (a timestamp at 'infinity' or in a BC
year has no Python value), and a database error becomes a failed outcome that says
why, never a crash.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from customer_analytics_pipeline.warehouse.checks.masking import (
    database_error_text,
    mask_personal_fields,
)
from customer_analytics_pipeline.warehouse.connection import set_local_settings
from customer_analytics_pipeline.warehouse.sql_files import load_sql

T = TypeVar("T")

ERROR = "ERROR"
WARN = "WARN"
SAMPLES_PER_ORGANIZATION = 3
MAX_SAMPLES = 10
# Problem texts are built in SQL from the row's values: a huge one is cut there.
MAX_PROBLEM_CHARACTERS = 300
# Each check's transaction: aggregates hashed in memory, no JIT (it compiled longer than
# the queries ran), no parallel workers (each one repeated the whole inner aggregate of
# a join, and production runs two refreshes at once on two cores). Measured over four
# batches of 1M clients: 4.73 s with the server's defaults, 3.67 s with these.
CHECK_SETTINGS = {"work_mem": "256MB", "jit": "off", "max_parallel_workers_per_gather": "0"}
# The rows the checks read in place of customer_analytics, copied once per audit into
# the temporary table audited_rows (sql/checks/README.md).
AUDITED_ROWS_SQL = "checks/create_audited_rows.sql"
# Unchanged rows are sampled in this many buckets of customers, one per hour of the day
# (docs/architecture.md, "The audit before commit").
SAMPLE_BUCKETS = 24


@dataclass(frozen=True)
class AuditScope:
    """Which customer_analytics rows the checks audit. By default every row (the
    ``check`` command, a refresh asked for a full audit). A refresh's audit instead
    names its transaction's ``refreshed_at``: the rows it wrote carry it as their
    ``updated_at`` and are all audited; of the others, only the customers whose sample
    bucket is in the organization's ``sample`` window ``(first bucket, buckets)``
    (``sample_window``); an organization without a window has every row audited."""

    refreshed_at: datetime | None = None
    sample: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def every_row(self) -> bool:
        return self.refreshed_at is None

    def parameters(self) -> dict[str, Any]:
        """The SQL parameters of ``create_audited_rows.sql``."""
        return {
            "every_row": self.every_row,
            "refreshed_at": self.refreshed_at,
            "sample": json.dumps({org: {"first": first, "buckets": buckets}
                                  for org, (first, buckets) in self.sample.items()}),
            "sample_buckets": SAMPLE_BUCKETS,
        }


EVERY_ROW = AuditScope()


def hour_number(instant: datetime) -> int:
    """Hours since the epoch: the hour a sample bucket belongs to, modulo SAMPLE_BUCKETS."""
    return int(instant.timestamp() // 3600)


def sample_window(previous_as_of: datetime | None, as_of: datetime) -> tuple[int, int]:
    """The sample buckets of unchanged rows a refresh at ``as_of`` audits, after one at
    ``previous_as_of``, as ``(first bucket, how many)``: the hours of the day that began
    in between, so that refreshes one after the other audit every bucket once a day
    (every bucket after a day or more, after none, or when as_of went back)."""
    if previous_as_of is None:
        return 0, SAMPLE_BUCKETS
    hours = hour_number(as_of) - hour_number(previous_as_of)
    if not 0 <= hours < SAMPLE_BUCKETS:
        return 0, SAMPLE_BUCKETS
    return (hour_number(previous_as_of) + 1) % SAMPLE_BUCKETS, hours


@dataclass(frozen=True)
class Failures:
    """The failing rows of one check, counted per organization, with masked samples."""

    rows_by_organization: Mapping[str, int] = field(default_factory=dict)
    samples: Sequence[Mapping[str, Any]] = ()
    error: str | None = None  # the check could not evaluate (e.g. the table is missing)

    @property
    def total(self) -> int:
        return sum(self.rows_by_organization.values())

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.rows_by_organization)

    def of_organization(self, organization_id: str) -> "Failures":
        """The failures of one organization only (an evaluation error concerns them all)."""
        rows = self.rows_by_organization.get(organization_id)
        return Failures(
            {organization_id: rows} if rows else {},
            [sample for sample in self.samples if sample.get("organization_id") == organization_id],
            self.error,
        )

    @classmethod
    def combine(cls, parts: Sequence["Failures"]) -> "Failures":
        """One check's failures over organizations evaluated apart (in transactions of
        their own): counts added up, samples as ``find_failures`` keeps them (by
        organization, at most ``MAX_SAMPLES``), the first error."""
        rows: dict[str, int] = {}
        for part in parts:
            for organization_id, count in part.rows_by_organization.items():
                rows[organization_id] = rows.get(organization_id, 0) + count
        samples = sorted((s for part in parts for s in part.samples), key=lambda s: str(s.get("organization_id")))
        errors = [part.error for part in parts if part.error]
        return cls(dict(sorted(rows.items())), samples[:MAX_SAMPLES], errors[0] if errors else None)


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict. ``details`` holds JSON-ready extras (a masked sample row,
    the segment distribution)."""

    check_name: str
    asset: str  # "customer_analytics" or the view's name
    severity: str  # ERROR or WARN: what a failure of this outcome means
    failures: Failures
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures.failed

    def of_organization(self, organization_id: str) -> "CheckOutcome":
        return replace(self, failures=self.failures.of_organization(organization_id))

    @classmethod
    def combine(cls, parts: Sequence["CheckOutcome"]) -> "CheckOutcome":
        """One check's outcome over organizations evaluated apart: the failures combined,
        the details of the first part that failed (else of the first part)."""
        shown = next((part for part in parts if not part.passed), parts[0])
        return replace(shown, failures=Failures.combine([part.failures for part in parts]))


def failed_check_summaries(outcomes: Sequence[CheckOutcome], organization_ids: Sequence[str]) -> list[dict]:
    """Which checks failed, how badly, where, for ``application_logs``: ids and counts
    only. A check that could not evaluate failed for every organization it checked."""
    summaries = []
    for outcome in outcomes:
        if outcome.passed:
            continue
        failures = outcome.failures
        summary = {
            "check": outcome.check_name,
            "severity": outcome.severity,
            "organizations": sorted(failures.rows_by_organization) or list(organization_ids),
            "failing_rows": failures.total,
        }
        if failures.error:
            summary["error"] = failures.error
        summaries.append(summary)
    return summaries


def attempt(conn: psycopg.Connection, compute: Callable[[], T]) -> tuple[T | None, str | None]:
    """``(compute(), None)``, run in a transaction of its own so a failed statement leaves
    the connection usable for the next check; ``(None, why)`` when the database refused."""
    try:
        with conn.transaction():
            set_local_settings(conn, CHECK_SETTINGS)
            return compute(), None
    except psycopg.Error as error:
        return None, database_error_text(error)


def failures_or_error(conn: psycopg.Connection, evaluate: Callable[[], Failures]) -> Failures:
    """``evaluate()``, or a failure naming the database error that stopped it."""
    failures, error = attempt(conn, evaluate)
    return Failures(error=error) if error else failures


def copy_audited_rows(conn: psycopg.Connection, organization_ids: Sequence[str], scope: AuditScope) -> None:
    """Copies the organizations' rows of ``scope`` into the temporary table audited_rows,
    which every check of ``sql/checks/`` reads instead of finding them again, and
    analyzes its key, so that the checks' joins with it are planned on its real size."""
    conn.execute(load_sql(AUDITED_ROWS_SQL), {**scope.parameters(), "organization_ids": list(organization_ids)})
    conn.execute("ANALYZE audited_rows (organization_id, square_customer_id)")


def find_failures(
    conn: psycopg.Connection, sql_file: str, organization_ids: Sequence[str], **params: object
) -> Failures:
    """Runs a failing-rows query of ``sql/checks/`` (a bare SELECT, see its README) for
    the organizations, with any further ``params`` it takes; a check of customer_analytics
    reads the rows ``copy_audited_rows`` copied."""
    query = sql.SQL(
        "WITH failures AS ({failures}),"
        " numbered AS (SELECT f.*,"
        "   row_number() OVER (PARTITION BY organization_id ORDER BY square_customer_id) AS position,"
        "   count(*) OVER (PARTITION BY organization_id) AS failing_rows FROM failures AS f)"
        " SELECT organization_id::text AS organization_id, failing_rows, square_customer_id,"
        "   left(problem, {problem_characters}) AS problem, email_address, phone_number"
        " FROM numbered WHERE position <= {samples} ORDER BY organization_id, position"
    ).format(
        failures=sql.SQL(load_sql(sql_file)),
        problem_characters=MAX_PROBLEM_CHARACTERS,
        samples=SAMPLES_PER_ORGANIZATION,
    )

    def evaluate() -> Failures:
        with conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(query, {**params, "organization_ids": list(organization_ids)}).fetchall()
        counts = {row["organization_id"]: row.pop("failing_rows") for row in rows}
        return Failures(counts, [mask_personal_fields(row) for row in rows[:MAX_SAMPLES]])

    return failures_or_error(conn, evaluate)
