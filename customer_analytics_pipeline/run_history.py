"""The run history the application's admin page reads: one application_logs row per
refresh batch (``payload->>'cron_name' = 'refresh-customer-analytics'``)."""

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from customer_analytics_pipeline.refresh import RefreshResult
from customer_analytics_pipeline.sql_files import load_sql

CRON_NAME = "refresh-customer-analytics"
MAX_ORGANIZATIONS_LISTED = 1000


def append_run_history(conn: psycopg.Connection, level: str, message: str, payload: dict[str, Any]) -> None:
    conn.execute(
        load_sql("run_history/append_application_log.sql"),
        {"level": level, "message": message, "payload": json.dumps({"cron_name": CRON_NAME, **payload}, default=str)},
    )


def record_success(conn: psycopg.Connection, result: RefreshResult, run_id: str) -> None:
    """Called inside the refresh transaction: the row exists exactly when the refresh committed."""
    if run_recorded(conn, run_id):
        return
    organizations = [o.organization_id for o in result.organizations]
    append_run_history(
        conn,
        "info",
        f"customer analytics {result.mode} refresh of {len(organizations)} organization(s): {result.rows_changed} row(s) changed",
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
    duration_seconds: float | None = None,
) -> None:
    """A failed batch: nothing changed (the refresh rolled back), and why."""
    append_run_history(
        conn,
        "error",
        f"customer analytics refresh failed for {len(organization_ids)} organization(s): {error[:200]}",
        {
            "status": "failure",
            "mode": mode,
            "organization_count": len(organization_ids),
            "organizations": list(organization_ids)[:MAX_ORGANIZATIONS_LISTED],
            "rows_changed": 0,
            "duration_seconds": None if duration_seconds is None else round(duration_seconds, 3),
            "error": error,
            "dagster_run_id": run_id,
        },
    )


def run_recorded(conn: psycopg.Connection, run_id: str) -> bool:
    """Whether the run already has its row (a retried attempt or the failure sensor
    must not add a second one)."""
    return conn.execute(
        load_sql("run_history/run_recorded.sql"), {"cron_name": CRON_NAME, "run_id": run_id}
    ).fetchone()[0]
