"""The private Dagster behaviour ``defs/dagster_internals.py`` relies on: fails when a
Dagster upgrade renames, moves or changes it."""

import inspect

import dagster._grpc.impl
from dagster import DagsterInstance, DagsterRun, DefaultRunLauncher
from dagster._core.events import EngineEventData

from customer_analytics_pipeline.defs.dagster_internals import (
    GRPC_INFO_TAG,
    RUN_WORKER_STARTED,
    CheckRunHealthResult,
    WorkerStatus,
    run_worker_pid,
    run_worker_started_event,
)


def test_the_health_check_types_and_the_code_server_tag_are_as_the_launcher_uses_them():
    result = CheckRunHealthResult(WorkerStatus.FAILED, "gone", run_worker_id="42")
    assert (result.status, result.msg, result.run_worker_id) == (WorkerStatus.FAILED, "gone", "42")
    assert {WorkerStatus.RUNNING, WorkerStatus.FAILED} <= set(WorkerStatus)
    # The tag DefaultRunLauncher sets naming the code server that launched a run.
    assert GRPC_INFO_TAG == ".dagster/grpc_info"
    assert "GRPC_INFO_TAG" in inspect.getsource(inspect.getmodule(DefaultRunLauncher))


def test_a_run_worker_still_logs_its_pid_as_the_launcher_reads_it():
    # The run worker's own line, as Dagster writes it (a changed message fails here) ...
    assert 'f"Started process for run (pid: {pid}).",' in inspect.getsource(dagster._grpc.impl)
    assert "EngineEventData.in_process(pid)" in inspect.getsource(dagster._grpc.impl)
    # ... and what the adapter reads back from such an event.
    with DagsterInstance.ephemeral() as instance:
        run = instance.add_run(DagsterRun(job_name="job", run_id="0f1e2d3c-0000-4000-8000-000000000001"))
        assert run_worker_started_event(instance, run.run_id) is None
        instance.report_engine_event(f"{RUN_WORKER_STARTED}4242).", run, EngineEventData.in_process(4242))
        record = run_worker_started_event(instance, run.run_id)
        assert record is not None and run_worker_pid(record) == 4242
