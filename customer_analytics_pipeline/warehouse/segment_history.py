"""Retention of ``customer_segment_changes``: change rows older than the history window
are deleted in short batches, each its own transaction, so no lock is held for long."""

import psycopg

from customer_analytics_pipeline.warehouse.sql_files import load_sql

DELETE_EXPIRED_SQL = "segment_history/delete_expired_segment_changes.sql"
# Rows per DELETE: a few milliseconds of row locks each.
RETENTION_BATCH_ROWS = 5_000


def delete_expired_segment_changes(
    conn: psycopg.Connection, organization_ids: list[str], keep_days: int, batch_size: int = RETENTION_BATCH_ROWS
) -> int:
    """Deletes the organizations' change rows older than ``keep_days`` days; returns how many."""
    if not conn.autocommit:
        raise ValueError("delete_expired_segment_changes commits each batch: pass an autocommit connection")
    if keep_days < 1 or batch_size < 1:
        raise ValueError(f"keep_days and batch_size must be at least 1, got {keep_days} and {batch_size}")
    params = {"organization_ids": organization_ids, "keep_days": keep_days, "batch_size": batch_size}
    deleted = 0
    while True:
        batch = conn.execute(load_sql(DELETE_EXPIRED_SQL), params).rowcount
        deleted += batch
        if batch < batch_size:
            return deleted
