"""The run history the application's admin page reads: one application_logs row per
refresh batch (``payload->>'cron_name' = 'refresh-customer-analytics'``)."""

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from customer_analytics_pipeline.warehouse.refresh import RefreshResult
from customer_analytics_pipeline.warehouse.sql_files import load_sql

CRON_NAME = "refresh-customer-analytics"
MAX_ORGANIZATIONS_LISTED = 1000


def append_run_history(conn: psycopg.Connection, level: str, message: str, payload: dict[str, Any]) -> None:
    conn.execute(
        load_sql("run_history/append_application_log.sql"),
        {"level": level, "message": message, "payload": json.dumps({"cron_name": CRON_NAME, **payload}, default=str)},
    )


def claim_run(conn: psycopg.Connection, run_id: str, status: str) -> bool:
    """True for the first claim of a run's outcome row: a retried attempt or the
    run-failure sensor must not add a second one."""
    claimed = conn.execute(load_sql("run_history/claim_run.sql"), {"run_id": run_id, "status": status}).fetchone()
    return claimed is not None


def record_success(conn: psycopg.Connection, result: RefreshResult, run_id: str) -> None:
    """Called inside the refresh transaction: the row exists exactly when the refresh committed."""
    if not claim_run(conn, run_id, "success"):
        return
    organizations = [o.organization_id for o in result.organizations]
    append_run_history(
        conn,
        "info",
        f"customer analytics {result.mode} refresh of {len(organizations)} organization(s): "
        f"{result.rows_changed} row(s) changed",
        {
            "status": "success",
            "mode": result.mode,
            "as_of": result.as_of.isoformat(),
            "organization_count": len(organizations),
            "organizations": organizations[:MAX_ORGANIZATIONS_LISTED],
            "rows_inserted": result.total("rows_inserted"),
            "rows_updated": result.total("rows_updated"),
            "rows_deleted": result.total("rows_deleted"),
            "rows_changed": result.rows_changed,
            "duration_seconds": round(result.duration_seconds, 3),
            "error": None,
            "dagster_run_id": run_id,
        },
    )


def record_failure(
    conn: psycopg.Connection, run_id: str, error: str, mode: str | None, organization_ids: Sequence[str],
    committed_organization_ids: Sequence[str] = (), failed_checks: Sequence[dict[str, Any]] = (),
) -> None:
    """A failed batch, and why: its organizations kept their previous rows, except
    ``committed_organization_ids`` (bad data or a failed audit in others did not block
    them); ``failed_checks`` are the checks whose audit rolled organizations back
    (``{check, severity, organizations, failing_rows}``, ids and counts). Once per run.
    A batch of no organization gets no row: the admin page lists refreshes of
    organizations, and a run that resolved to none refreshed nothing."""
    if not organization_ids:
        return
    with conn.transaction():
        if not claim_run(conn, run_id, "failure"):
            return
        append_run_history(
            conn,
            "error",
            f"customer analytics refresh failed for {len(organization_ids) - len(committed_organization_ids)} "
            f"organization(s): {error[:200]}",
            {
                "status": "failure",
                "mode": mode,
                "organization_count": len(organization_ids),
                "organizations": list(organization_ids)[:MAX_ORGANIZATIONS_LISTED],
                "organizations_committed": list(committed_organization_ids)[:MAX_ORGANIZATIONS_LISTED],
                "failed_checks": [
                    {**check, "organizations": list(check["organizations"])[:MAX_ORGANIZATIONS_LISTED]}
                    for check in failed_checks
                ],
                "error": error,
                "dagster_run_id": run_id,
            },
        )


def record_check_failures(conn: psycopg.Connection, run_id: str, failed_checks: Sequence[dict[str, Any]]) -> None:
    """One row for a check step whose checks failed, so the admin page tells the story the
    Dagster run tells: which checks, at which severity, for which organizations. Each of
    ``failed_checks`` is ``{check, severity ("ERROR"/"WARN"), organizations,
    failing_rows}`` (plus ``error`` when it could not evaluate): ids and counts, never
    personal data. Not a run's outcome row (``claim_run``): a run that refreshed and then
    failed its checks has both."""
    level = "error" if any(check["severity"] == "ERROR" for check in failed_checks) else "warning"
    append_run_history(
        conn,
        level,
        "customer analytics checks failed: "
        + ", ".join(f"{check['check']} ({check['severity']})" for check in failed_checks),
        {
            "status": "checks_failed",
            "dagster_run_id": run_id,
            "failed_checks": [
                {**check, "organizations": list(check["organizations"])[:MAX_ORGANIZATIONS_LISTED]}
                for check in failed_checks
            ],
        },
    )
