"""How check outcomes reach Dagster. The eight checks are check specs of the
``customer_analytics`` step: the refresh audits its rows with the ERROR ones before it
commits, the two others run after the commit, all with the database layer's evaluation
(the same one ``customer-analytics check`` runs over every row), and the step reports
them with ``report_outcomes`` below.

Each outcome becomes an AssetCheckResult with counts, a table of the failing
organizations (id, name, failing rows, an example) and masked samples in its metadata
(the check page plots the numbers over time); each failure also writes run-log lines
at its severity, naming each organization, and a step with
failures appends one application_logs row, so the run log, the UI and the application's
admin page tell the same story. Checks 1-7 are blocking with ERROR severity: an
organization that fails one keeps its previous rows, and the step (and so the run) fails
after every result is reported.
"""

from collections.abc import Sequence

import psycopg
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    DagsterLogManager,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)

from customer_analytics_pipeline.warehouse.checks.masking import database_error_text
from customer_analytics_pipeline.warehouse.checks.outcomes import ERROR, CheckOutcome, failed_check_summaries
from customer_analytics_pipeline.warehouse.organizations import labelled, organization_names
from customer_analytics_pipeline.warehouse.run_history import record_check_failures

MAX_ORGANIZATIONS_IN_METADATA = 50
MAX_ALERT_LINES = 20


FAILING_ORGANIZATIONS_SCHEMA = TableSchema(columns=[
    TableColumn("organization_id", "string"),
    TableColumn("organization", "string", description="the organization's name"),
    TableColumn("failing_rows", "int"),
    TableColumn("example", "string", description="one failing row's problem (ids and values, no personal data)"),
])


def first_problems(outcome: CheckOutcome) -> dict[str, str]:
    """One example problem per organization, from the outcome's masked samples."""
    examples: dict[str, str] = {}
    for sample in outcome.failures.samples:
        examples.setdefault(sample.get("organization_id"), sample.get("problem"))
    return examples


def failing_organizations_table(outcome: CheckOutcome, names: dict[str, str]) -> MetadataValue:
    """The failing organizations, most failing rows first (the first 50), by name."""
    examples = first_problems(outcome)
    ordered = sorted(outcome.failures.rows_by_organization.items(), key=lambda item: (-item[1], item[0]))
    return MetadataValue.table(
        [TableRecord({"organization_id": organization_id, "organization": names.get(organization_id, ""),
                      "failing_rows": rows, "example": examples.get(organization_id) or ""})
         for organization_id, rows in ordered[:MAX_ORGANIZATIONS_IN_METADATA]],
        schema=FAILING_ORGANIZATIONS_SCHEMA,
    )


def asset_check_result(outcome: CheckOutcome, organizations_checked: int, names: dict[str, str]) -> AssetCheckResult:
    """The outcome with its counts (plotted over time on the check's page), the failing
    organizations by name and the masked samples as metadata."""
    failures = outcome.failures
    metadata = {
        "organizations_checked": organizations_checked,
        "failing_rows": failures.total,
        "failing_organizations": len(failures.rows_by_organization),
        **{key: MetadataValue.json(value) if isinstance(value, (dict, list)) else value
           for key, value in outcome.details.items()},
    }
    if failures.rows_by_organization:
        metadata["failing_organizations_by_name"] = failing_organizations_table(outcome, names)
    if failures.samples:
        metadata["failing_samples"] = MetadataValue.json(list(failures.samples))
    if failures.error:
        metadata["error"] = failures.error
    return AssetCheckResult(
        asset_key=AssetKey(outcome.asset),
        check_name=outcome.check_name,
        passed=outcome.passed,
        severity=AssetCheckSeverity(outcome.severity),
        metadata=metadata,
    )


def log_alerts(log: DagsterLogManager, outcome: CheckOutcome, names: dict[str, str]) -> None:
    """One run-log line per failing organization: check, organization and its name, count,
    an example."""
    write = log.error if outcome.severity == ERROR else log.warning
    prefix = f"[{outcome.severity}] check {outcome.check_name}"
    failures = outcome.failures
    if failures.error:
        write(f"{prefix} could not evaluate: {failures.error}")
    examples = first_problems(outcome)
    ordered = sorted(failures.rows_by_organization.items())
    for organization_id, count in ordered[:MAX_ALERT_LINES]:
        example = examples.get(organization_id)
        example_text = f", e.g. {example}" if example else ""
        write(f"{prefix} failed for organization {labelled(organization_id, names)}: {count} row(s){example_text}")
    if len(ordered) > MAX_ALERT_LINES:
        write(f"{prefix} failed for {len(ordered) - MAX_ALERT_LINES} more organization(s)")


def record_failed_checks(
    context: AssetExecutionContext, conn: psycopg.Connection, failed: Sequence[CheckOutcome],
    organization_ids: Sequence[str],
) -> None:
    """Best effort: the run log has the failures already, so a run history the database
    cannot take (it is down, say) is a warning, never a crashed check step."""
    try:
        with conn.transaction():
            record_check_failures(conn, context.run.run_id, failed_check_summaries(failed, organization_ids))
    except psycopg.Error as error:
        context.log.warning(f"could not record the failed checks in application_logs: {database_error_text(error)}")


def names_of_failing_organizations(
    context: AssetExecutionContext, conn: psycopg.Connection, failed: Sequence[CheckOutcome]
) -> dict[str, str]:
    """Best effort: without the names (the database failed, say), the ids alone are shown."""
    failing = sorted({key for outcome in failed for key in outcome.failures.rows_by_organization})
    if not failing:
        return {}
    try:
        with conn.transaction():
            return organization_names(conn, failing)
    except psycopg.Error as error:
        context.log.warning(f"could not read the failing organizations' names: {database_error_text(error)}")
        return {}


def report_outcomes(
    context: AssetExecutionContext, conn: psycopg.Connection, outcomes: Sequence[CheckOutcome],
    organization_ids: Sequence[str],
) -> list[AssetCheckResult]:
    """Logs and records the failures, then gives the results for the step to yield."""
    failed = [outcome for outcome in outcomes if not outcome.passed]
    names = names_of_failing_organizations(context, conn, failed)
    for outcome in failed:
        log_alerts(context.log, outcome, names)
    if failed:
        record_failed_checks(context, conn, failed, organization_ids)
    return [asset_check_result(outcome, len(organization_ids), names) for outcome in outcomes]
