"""What the run launcher needs of Dagster that Dagster 1.13 does not export: the
health-check result types a ``RunLauncher`` returns, the tag naming the code server
that launched a run, and the engine event in which a run worker logs its pid. Kept in
this one module, with a test (``test_dagster_internals``) that fails when any of it
changes in a Dagster upgrade."""

from dagster import DagsterEventType, DagsterInstance, EventLogRecord

# Private modules: no public name for these in Dagster 1.13.
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

__all__ = ["GRPC_INFO_TAG", "CheckRunHealthResult", "WorkerStatus", "run_worker_pid", "run_worker_started_event"]

# The engine event a run worker writes first thing (Dagster's _run_in_subprocess), its
# pid also in the event's metadata.
RUN_WORKER_STARTED = "Started process for run (pid: "


def run_worker_started_event(instance: DagsterInstance, run_id: str) -> EventLogRecord | None:
    """The run worker's "Started process for run (pid: N)." event record, or None."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
    return next((r for r in records if (r.event_log_entry.message or "").startswith(RUN_WORKER_STARTED)), None)


def run_worker_pid(record: EventLogRecord) -> int:
    """The pid of that event: its metadata, not its text."""
    return int(record.event_log_entry.dagster_event.engine_event_data.metadata["pid"].value)
