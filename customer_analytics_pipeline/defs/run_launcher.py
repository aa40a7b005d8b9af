"""The run launcher of ``dagster.yaml``: Dagster's default launcher plus a run-worker health
check, so that run monitoring can fail a run whose process died.

Why: ``DefaultRunLauncher`` starts each run as a child process of the code server and
does not implement ``check_run_worker_health``, so the monitoring daemon never asks
whether a STARTED run's process still exists. The code server notices a dead child only
while it runs itself: when the run dies together with it (a restart or deploy, an OOM
kill, ``kill -9`` of the process group, a host reboot), the run stays STARTED forever
and keeps its slot of the ``customer_analytics_database`` pool, so after two such
crashes every later refresh waits forever. Here the monitoring daemon reads the pid the
run worker logged itself ("Started process for run (pid: N).") and reports the worker
FAILED once that process is gone; monitoring then fails the run, and
``free_slots_after_run_end_seconds`` frees its pool slots.

A pid means something only on the host (and in the pid namespace) where it was logged:
the daemon must run beside the code server, as in the production runbook (docs/operations.md).
Runs whose code server is elsewhere, and runs not launched through a code server (say,
``execute_in_process``), are reported RUNNING: they are never failed on a guess.
"""

import json
import socket

import psutil
from dagster import DagsterRun, DefaultRunLauncher

# Dagster's run-launcher internals without a public name in 1.13 live in one adapter.
from customer_analytics_pipeline.defs.dagster_internals import (
    GRPC_INFO_TAG,
    CheckRunHealthResult,
    WorkerStatus,
    run_worker_pid,
    run_worker_started_event,
)

# Slack between a process's creation time and the first event it logs: a pid found alive
# but created after that event was reused by another process.
CREATE_TIME_SLACK_SECONDS = 1.0

__all__ = ["PidCheckingRunLauncher", "code_server_is_local", "run_worker_started_event"]


class PidCheckingRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose ``check_run_worker_health`` looks for the run worker's pid."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if not code_server_is_local(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not launched by a code server on this host")
        started = run_worker_started_event(self._instance, run.run_id)
        if started is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run worker has not logged its pid yet")
        pid = run_worker_pid(started)
        try:
            process = psutil.Process(pid)
            alive = (
                process.status() != psutil.STATUS_ZOMBIE
                and process.create_time() <= started.timestamp + CREATE_TIME_SLACK_SECONDS
            )
        except psutil.NoSuchProcess:
            alive = False
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)", run_worker_id=str(pid)
        )


def code_server_is_local(run: DagsterRun) -> bool:
    """Whether a code server on this host launched the run (DefaultRunLauncher tags it)."""
    if GRPC_INFO_TAG not in run.tags:
        return False
    server = json.loads(run.tags[GRPC_INFO_TAG])
    return "socket" in server or server.get("host") in {"localhost", "127.0.0.1", "::1", socket.gethostname()}
