"""Turns a check's "failing rows" SQL into an AssetCheckResult and run-log alerts.

Every check SQL (``sql/checks/<check>.sql``) selects the failing rows as
``(organization_id, square_customer_id, problem, email_address, phone_number)``; this
module counts them per organization, keeps a few masked samples, and logs one line
per failing organization at the check's severity, so the run log tells the story.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, DagsterLogManager, MetadataValue
from psycopg import sql
from psycopg.rows import dict_row

from customer_analytics_pipeline.checks.masking import mask_contacts
from customer_analytics_pipeline.sql_files import load_sql

SAMPLES_PER_ORGANIZATION = 3
MAX_SAMPLES = 10
MAX_ORGANIZATIONS_IN_METADATA = 50
MAX_ALERT_LINES = 20


@dataclass
class Failures:
    """The failing rows of one check, counted per organization, with masked samples."""

    rows_by_organization: dict[str, int] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    error: str | None = None  # the check could not evaluate (e.g. the table is missing)

    @property
    def total(self) -> int:
        return sum(self.rows_by_organization.values())

    @property
    def failed(self) -> bool:
        return self.error is not None or bool(self.rows_by_organization)


def find_failures(conn: psycopg.Connection, check_name: str, organization_ids: Sequence[str]) -> Failures:
    """Runs ``sql/checks/<check_name>.sql``; a database error becomes a failed result, not a crash."""
    query = sql.SQL(
        "WITH failures AS ({failures}),"
        " numbered AS (SELECT f.*,"
        "   row_number() OVER (PARTITION BY organization_id ORDER BY square_customer_id) AS position,"
        "   count(*) OVER (PARTITION BY organization_id) AS failing_rows FROM failures AS f)"
        " SELECT organization_id::text AS organization_id, failing_rows, square_customer_id, problem,"
        "   email_address, phone_number"
        " FROM numbered WHERE position <= {samples} ORDER BY organization_id, position"
    ).format(failures=sql.SQL(load_sql(f"checks/{check_name}.sql")), samples=SAMPLES_PER_ORGANIZATION)
    failures = Failures()
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(query, {"organization_ids": list(organization_ids)}).fetchall()
    except psycopg.Error as error:
        failures.error = f"{type(error).__name__}: {error}".strip()
        return failures
    for row in rows:
        failures.rows_by_organization[row["organization_id"]] = row.pop("failing_rows")
        if len(failures.samples) < MAX_SAMPLES:
            failures.samples.append(mask_contacts(row))
    return failures


def check_result(
    asset_key: AssetKey,
    check_name: str,
    failures: Failures,
    organizations_checked: int,
    log: DagsterLogManager,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    extra_metadata: dict | None = None,
) -> AssetCheckResult:
    """The check's result with counts and masked samples; alerts logged at ``severity``."""
    metadata = {
        "organizations_checked": organizations_checked,
        "failing_rows": failures.total,
        "failing_organizations": len(failures.rows_by_organization),
        **(extra_metadata or {}),
    }
    if failures.rows_by_organization:
        metadata["failing_rows_by_organization"] = MetadataValue.json(
            dict(sorted(failures.rows_by_organization.items())[:MAX_ORGANIZATIONS_IN_METADATA])
        )
    if failures.samples:
        metadata["failing_samples"] = MetadataValue.json(failures.samples)
    if failures.error:
        metadata["error"] = failures.error
    if failures.failed:
        log_alerts(log, check_name, failures, severity)
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=not failures.failed,
        severity=severity,
        metadata=metadata,
    )


def log_alerts(log: DagsterLogManager, check_name: str, failures: Failures, severity: AssetCheckSeverity) -> None:
    """One run-log line per failing organization: check, organization, count."""
    write = log.error if severity == AssetCheckSeverity.ERROR else log.warning
    level = severity.value
    if failures.error:
        write(f"[{level}] check {check_name} could not evaluate: {failures.error}")
    samples_by_organization = defaultdict(list)
    for sample in failures.samples:
        samples_by_organization[sample.get("organization_id")].append(sample.get("problem"))
    ordered = sorted(failures.rows_by_organization.items())
    for organization_id, count in ordered[:MAX_ALERT_LINES]:
        example = samples_by_organization.get(organization_id)
        write(
            f"[{level}] check {check_name} failed for organization {organization_id}: {count} row(s)"
            + (f", e.g. {example[0]}" if example else "")
        )
    if len(ordered) > MAX_ALERT_LINES:
        write(f"[{level}] check {check_name} failed for {len(ordered) - MAX_ALERT_LINES} more organization(s)")
