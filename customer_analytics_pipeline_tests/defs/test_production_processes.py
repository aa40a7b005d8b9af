"""The production runbook end to end: the code server, dagster-webserver and dagster-daemon
as three processes (no `dagster dev`) on an instance with the repository's deploy/dagster.yaml and
its storage in PostgreSQL under a bare postgresql:// URL. Schedules and sensors run
without anyone starting them; a killed run worker is failed, its pool slot freed, and
the next run succeeds; SIGTERM stops all three."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunsFilter,
    instance_for_test,
)
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_run_for_test
from dagster._grpc.client import DagsterGrpcClient
from dagster_graphql import DagsterGraphQLClient

from customer_analytics_pipeline.definitions import defs
from customer_analytics_pipeline.defs.customer_analytics_asset import DATABASE_POOL
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.run_launcher import (
    PidCheckingRunLauncher,
    run_worker_started_event,
)
from customer_analytics_pipeline.dev.dagster_instance import sqlalchemy_url
from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.warehouse.connection import APPLICATION_NAME
from customer_analytics_pipeline.warehouse.locks import ORGANIZATION_LOCK_NAMESPACE
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME
from customer_analytics_pipeline_tests.defs.test_resilience import advisory_locks, application_log_statuses
from customer_analytics_pipeline_tests.helpers import free_port, organization_ids, serves, with_signals_ignored

DAGSTER_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"  # as deployed
# The runbook's command, from the venv: it becomes Dagster's code server, webserver or daemon.
RUNBOOK_COMMAND = Path(sys.executable).parent / "customer-analytics"
POOL = DATABASE_POOL
LOCATION = "customer_analytics_pipeline"
STOP_TIMEOUT_SECONDS = 30


def test_schedules_and_sensors_run_by_default():
    assert {s.name: s.default_status for s in defs.schedules} == {
        "hourly_recent_refresh": DefaultScheduleStatus.RUNNING,
        "nightly_full_refresh": DefaultScheduleStatus.RUNNING,
    }
    assert {s.name: s.default_status for s in defs.sensors} == {
        "organization_partitions_sensor": DefaultSensorStatus.RUNNING,
        "refresh_failure_sensor": DefaultSensorStatus.RUNNING,
        "customer_analytics_freshness_sensor": DefaultSensorStatus.RUNNING,
    }


@pytest.mark.parametrize("code_server, worker, status", [
    ({"host": "localhost", "port": 4000}, "alive", WorkerStatus.RUNNING),
    ({"host": "localhost", "port": 4000}, "dead", WorkerStatus.FAILED),
    ({"socket": "/tmp/code-server.sock"}, "dead", WorkerStatus.FAILED),
    ({"host": "localhost", "port": 4000}, "not logged yet", WorkerStatus.RUNNING),
    ({"host": "code-server.internal", "port": 4000}, "dead", WorkerStatus.RUNNING),  # another host's pid
    (None, "dead", WorkerStatus.RUNNING),  # not launched through a code server (execute_in_process)
])
def test_run_worker_health_check(code_server, worker, status):
    """A run is reported dead only when a code server on this host launched it and the
    pid its worker logged is gone."""
    with instance_for_test() as instance, subprocess.Popen(["sleep", "60"]) as process:
        try:
            if worker == "dead":
                process.kill()
                process.wait()
            tags = {GRPC_INFO_TAG: json.dumps(code_server)} if code_server else {}
            run = create_run_for_test(instance, tags=tags, status=DagsterRunStatus.STARTED)
            if worker != "not logged yet":  # the run worker's own first event, as Dagster writes it
                instance.report_engine_event(
                    f"Started process for run (pid: {process.pid}).", run, EngineEventData.in_process(process.pid))
            launcher = PidCheckingRunLauncher()
            launcher.register_instance(instance)
            assert launcher.check_run_worker_health(run).status == status
        finally:
            process.kill()


def bare_postgresql_url(conninfo: str) -> str:
    """The database as an operator would write it: postgresql://, no driver named."""
    return sqlalchemy_url(conninfo).replace("postgresql+psycopg2://", "postgresql://", 1)


class Deployment:
    """The three processes, each in a session of its own (so the processes it starts, run
    workers included, can be found and cleaned up), logging to files in ``folder``;
    launched with the ``ignored`` signals ignored, as a launcher may leave them."""

    def __init__(self, folder: Path, env: dict[str, str], ignored: tuple[signal.Signals, ...] = ()):
        self.folder, self.env, self.ignored = folder, env, ignored
        self.processes: dict[str, subprocess.Popen] = {}
        self.code_server_port, self.webserver_port = free_port(), free_port()

    def start(self) -> None:
        (self.folder / "workspace.yaml").write_text(
            "load_from:\n  - grpc_server:\n"
            f"      host: 127.0.0.1\n      port: {self.code_server_port}\n      location_name: {LOCATION}\n"
        )
        self.start_code_server()
        self.spawn("webserver", [RUNBOOK_COMMAND, "webserver", "-w", "workspace.yaml", "--host", "127.0.0.1",
                                 "--port", str(self.webserver_port)])
        self.spawn("daemon", [RUNBOOK_COMMAND, "daemon", "-w", "workspace.yaml"])
        self.wait_for(lambda: serves(f"http://127.0.0.1:{self.webserver_port}/server_info"), 120,
                      "the webserver to answer")

    def start_code_server(self) -> None:
        self.spawn("code-server", [RUNBOOK_COMMAND, "code-server", "--host", "127.0.0.1",
                                   "--port", str(self.code_server_port)])
        client = DagsterGrpcClient(host="127.0.0.1", port=self.code_server_port)
        self.wait_for(lambda: _answers(client), 120, "the code server to load the definitions")

    def spawn(self, name: str, command: list) -> None:
        with open(self.folder / f"{name}.log", "a") as log:
            self.processes[name] = subprocess.Popen(
                with_signals_ignored([str(part) for part in command], self.ignored), cwd=self.folder, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}.log (last lines) ---\n" + "\n".join(
                (self.folder / f"{name}.log").read_text(errors="replace").splitlines()[-25:])
            for name in self.processes
        )

    def wait_for(self, predicate: Callable, timeout: float, what: str):
        """Polls ``predicate`` until it returns something truthy; fails early if a process died."""
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited with {process.returncode}\n{self.logs()}"
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}\n{self.logs()}"
            time.sleep(0.5)

    def session(self, *names: str) -> list[psutil.Process]:
        """The live processes of the named processes' sessions (all three by default)."""
        sessions = {self.processes[name].pid for name in names or self.processes}
        members = []
        for candidate in psutil.process_iter():
            try:
                if os.getsid(candidate.pid) in sessions and candidate.status() != psutil.STATUS_ZOMBIE:
                    members.append(candidate)
            except (OSError, psutil.Error):
                continue
        return members

    def kill(self, *names: str) -> None:
        """SIGKILL to every process of the named sessions (all three by default)."""
        doomed = self.session(*names)
        for process in doomed:
            process.kill()
        psutil.wait_procs(doomed, timeout=10)
        for name in names or self.processes:
            self.processes[name].wait()

    def terminate(self) -> dict[str, int | None]:
        """SIGTERM to each process; how each exited (None: still running after the timeout)."""
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        codes = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                codes[name] = None
        return codes


def _answers(client: DagsterGrpcClient) -> bool:
    try:
        client.ping("ready")
        return True
    except Exception:  # noqa: BLE001 - not serving yet
        return False


@pytest.fixture
def data(conn):
    """A scratch application database: source tables, migrations, a few small organizations."""
    generate(conn, GeneratorSettings(organizations=3, clients_per_org=20), progress=lambda message: None)
    return conn


@pytest.fixture
def deploy(database_url, make_scratch_database, tmp_path, monkeypatch):
    """Starts the three processes on a scratch DAGSTER_HOME (the repository's deploy/dagster.yaml) and
    a scratch storage database; yields the deployment and an open instance on the same
    storage; kills whatever is left afterwards."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    storage = {"DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_URL": bare_postgresql_url(make_scratch_database())}
    for name, value in storage.items():
        monkeypatch.setenv(name, value)
    deployments = []

    @contextmanager
    def start(ignored: tuple[signal.Signals, ...] = (), **settings: str):
        deployment = Deployment(tmp_path, {**os.environ, **storage, "DATABASE_URL": database_url, **settings}, ignored)
        deployments.append(deployment)
        deployment.start()
        with DagsterInstance.from_config(str(home)) as instance:
            yield deployment, instance

    yield start
    for deployment in deployments:
        deployment.kill()


def partitions_match(instance, data) -> list[str] | None:
    keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    return keys if sorted(keys) == organization_ids(data) else None


def finished(instance, run_id: str):
    run = instance.get_run_by_id(run_id)
    return run if run.is_finished else None


def claimed_by(instance, run_id: str) -> list[str]:
    """The steps of ``run_id`` holding a slot of the database pool."""
    return [slot.step_key for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
            if slot.run_id == run_id]


def assert_stops_on_sigterm(deployment: Deployment) -> None:
    codes = deployment.terminate()
    assert None not in codes.values(), (
        f"still running {STOP_TIMEOUT_SECONDS}s after SIGTERM: {codes}\n{deployment.logs()}"
    )
    deadline = time.monotonic() + 10  # the code server's own child exits after its parent
    while (leftovers := deployment.session()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leftovers == [], f"left behind after SIGTERM: {[p.cmdline() for p in leftovers]}"


def test_schedule_and_partition_sensor_run_by_default_and_sigterm_stops_all_three(deploy, data):
    with deploy(CUSTOMER_ANALYTICS_NIGHTLY_CRON="* * * * *") as (deployment, instance):
        # Nobody starts the sensor: its default status is RUNNING.
        deployment.wait_for(lambda: partitions_match(instance, data), 90,
                            "organization_partitions_sensor to add every organization")

        def scheduled_success():
            runs = instance.get_runs(RunsFilter(tags={"dagster/schedule_name": "nightly_full_refresh"}))
            failed = [run.run_id for run in runs if run.status == DagsterRunStatus.FAILURE]
            assert not failed, f"scheduled runs failed: {failed}\n{deployment.logs()}"
            return next((run for run in runs if run.status == DagsterRunStatus.SUCCESS), None)

        # The every-minute test cron: the first tick after the partitions exist launches a run.
        run = deployment.wait_for(scheduled_success, 150, "a successful nightly_full_refresh run")
        assert run.tags[PARTITION_RANGE_START_TAG] and run.tags[PARTITION_RANGE_END_TAG]
        rows, clients = data.execute(
            "SELECT (SELECT count(*) FROM customer_analytics), (SELECT count(*) FROM square_existing_clients)"
        ).fetchone()
        assert rows == clients > 0

        assert_stops_on_sigterm(deployment)


def failures_recorded(conn) -> set[str]:
    """Run ids of the refresh failures in application_logs."""
    return {row[0] for row in conn.execute(
        "SELECT payload->>'dagster_run_id' FROM application_logs"
        " WHERE payload->>'cron_name' = %s AND payload->>'status' = 'failure'", (CRON_NAME,))}


def failure_message(instance, run_id: str) -> str:
    (record,) = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records
    return record.event_log_entry.message


def test_killed_runs_are_failed_their_slots_freed_and_the_next_run_succeeds(deploy, data, database_url):
    with deploy() as (deployment, instance):
        keys = deployment.wait_for(lambda: partitions_match(instance, data), 90, "the partitions")
        client = DagsterGraphQLClient("127.0.0.1", port_number=deployment.webserver_port)

        def launch() -> str:
            return client.submit_job_execution(
                REFRESH_JOB_NAME, run_config={"ops": {"customer_analytics": {"config": {"mode": "full"}}}},
                tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
            )

        def crash_while_refreshing(crash: Callable[[psutil.Process], None]) -> str:
            """Launches a run and crashes it inside its refresh step, holding a pool slot
            (an organization lock held here keeps it there)."""
            with psycopg.connect(database_url, autocommit=True) as blocker:
                blocker.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (ORGANIZATION_LOCK_NAMESPACE, keys[0]))
                run_id = launch()
                started = deployment.wait_for(
                    lambda: claimed_by(instance, run_id) and run_worker_started_event(instance, run_id), 120,
                    "the run to start and claim its pool slot")
                pid = started.event_log_entry.dagster_event.engine_event_data.metadata["pid"].value
                crash(psutil.Process(int(pid)))
            return run_id

        def kill_run_worker(worker: psutil.Process) -> None:
            """SIGKILL to the run worker and its step process at once, as an OOM kill would."""
            doomed = [worker, *worker.children(recursive=True)]
            for process in doomed:
                process.kill()
            psutil.wait_procs(doomed, timeout=10)

        def kill_code_server_with_its_runs(worker: psutil.Process) -> None:
            """SIGKILL to the code server and everything it started (a crashed host or
            container), then the code server is started again, as a supervisor would."""
            deployment.kill("code-server")
            assert not worker.is_running()
            deployment.start_code_server()

        # The code server sees its run worker die and fails the run; the slot its dead
        # step never released is freed by the daemon's run monitoring.
        worker_killed = crash_while_refreshing(kill_run_worker)
        run = deployment.wait_for(lambda: finished(instance, worker_killed), 60, "the killed run to end")
        assert run.status == DagsterRunStatus.FAILURE
        deployment.wait_for(lambda: not claimed_by(instance, worker_killed), 60, "the killed run's slot to be freed")

        # No code server is left to notice: the run launcher's health check finds the run
        # worker's pid gone and run monitoring fails the run, then frees its slot.
        server_killed = crash_while_refreshing(kill_code_server_with_its_runs)
        run = deployment.wait_for(lambda: finished(instance, server_killed), 60, "the orphaned run to end")
        assert run.status == DagsterRunStatus.FAILURE
        assert "is gone (killed or crashed)" in failure_message(instance, server_killed)
        deployment.wait_for(lambda: not claimed_by(instance, server_killed), 60, "the orphaned run's slot to be freed")

        following = launch()
        run = deployment.wait_for(lambda: finished(instance, following), 120, "the next run to end")
        assert run.status == DagsterRunStatus.SUCCESS, deployment.logs()

        # refresh_failure_sensor (running by default) recorded both crashes.
        deployment.wait_for(lambda: failures_recorded(data) >= {worker_killed, server_killed}, 90,
                            "refresh_failure_sensor to record both crashed runs in application_logs")

        assert_stops_on_sigterm(deployment)


def test_a_killed_run_worker_takes_its_refresh_with_it(deploy, data, database_url):
    """kill -9 of the run worker alone (not its children) while the refresh waits inside
    its transaction: nothing of the refresh survives it. The run is FAILED, never retried,
    no STEP_SUCCESS is logged into it, no process of the run is left, no session or lock
    outlives it, the table keeps its (empty) rows even after the lock the refresh waited
    for is released, and application_logs holds exactly one row, a failure."""
    with deploy() as (deployment, instance):
        keys = deployment.wait_for(lambda: partitions_match(instance, data), 90, "the partitions")
        client = DagsterGraphQLClient("127.0.0.1", port_number=deployment.webserver_port)
        # The organization whose lock comes last: the refresh waits for it holding the others.
        (last,) = data.execute("SELECT id::text FROM organizations ORDER BY hashtext(id::text) DESC LIMIT 1").fetchone()
        with psycopg.connect(database_url, autocommit=True) as blocker:
            blocker.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (ORGANIZATION_LOCK_NAMESPACE, last))
            run_id = client.submit_job_execution(
                REFRESH_JOB_NAME, run_config={"ops": {"customer_analytics": {"config": {"mode": "full"}}}},
                tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
            )
            started = deployment.wait_for(lambda: run_worker_started_event(instance, run_id), 120,
                                          "the run worker to start")
            deployment.wait_for(lambda: data.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND %s = ANY(pg_blocking_pids(pid))",
                (blocker.info.backend_pid,)).fetchone(), 120, "the refresh to wait for the held lock")
            worker = psutil.Process(int(started.event_log_entry.dagster_event.engine_event_data.metadata["pid"].value))
            run_processes = [worker, *worker.children(recursive=True)]
            worker.kill()
            run = deployment.wait_for(lambda: finished(instance, run_id), 60, "the killed run to end")
            assert run.status == DagsterRunStatus.FAILURE
            messages = [r.event_log_entry.message for r in instance.get_records_for_run(run_id).records]
            # Whichever notices first fails the run and says why: the code server (its child
            # "was terminated by signal 9") or run monitoring (PidCheckingRunLauncher: the
            # worker's process "is gone"); the other then leaves the finished run alone.
            explanations = ("terminated by signal 9", f"run worker process {worker.pid} is gone")
            assert any(e in (m or "") for m in messages for e in explanations), messages
            blocker.execute("SELECT pg_advisory_unlock_all()")  # what the refresh waited for is free now

            # Whatever was left of the run has every chance to go on (and commit) now.
            deadline = time.monotonic() + 15
            while (survivors := [p for p in run_processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]) \
                    and time.monotonic() < deadline:
                time.sleep(0.5)
            survivors_cmdlines = [" ".join(p.cmdline()) for p in survivors]
            for process in survivors:  # cleaned up before the assertions can fail
                process.kill()
            assert survivors_cmdlines == [], f"processes of the killed run outlived it: {survivors_cmdlines}"
        time.sleep(2)
        assert data.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0
        assert data.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (APPLICATION_NAME,)).fetchone()[0] == 0
        assert advisory_locks(data) == []
        events = {record.event_log_entry.dagster_event.event_type
                  for record in instance.get_records_for_run(run_id).records
                  if record.event_log_entry.dagster_event}
        assert DagsterEventType.STEP_SUCCESS not in events and DagsterEventType.STEP_UP_FOR_RETRY not in events
        deployment.wait_for(lambda: run_id in failures_recorded(data), 90,
                            "refresh_failure_sensor to record the killed run")
        assert application_log_statuses(data, run_id) == ["failure"]
        deployment.wait_for(lambda: not claimed_by(instance, run_id), 60, "the killed run's slot to be freed")
        assert_stops_on_sigterm(deployment)


def test_the_runbook_processes_stop_on_sigterm_whatever_they_inherited_and_keep_their_ports(deploy, data):
    """Launched with SIGINT and SIGTERM ignored (a script's `cmd &` ignores SIGINT; Dagster's
    code server and daemon then ignored SIGTERM too), each process still stops on SIGTERM
    within seconds; and a second code server or webserver on a port in use is refused."""
    with deploy(ignored=(signal.SIGINT, signal.SIGTERM)) as (deployment, instance):
        deployment.wait_for(lambda: partitions_match(instance, data), 90, "the daemon's sensor to add the partitions")
        for process, port in (("code-server", deployment.code_server_port), ("webserver", deployment.webserver_port)):
            arguments = [process, "--host", "127.0.0.1", "--port", str(port)]
            if process == "webserver":
                arguments += ["-w", "workspace.yaml"]
            second = subprocess.run([RUNBOOK_COMMAND, *arguments], cwd=deployment.folder, env=deployment.env,
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 2, second.stdout + second.stderr
            assert second.stdout.splitlines() == [f"error: port {port} on 127.0.0.1 is already in use"
                                                  " (another server is running there)"], second.stdout + second.stderr
        started = time.monotonic()
        assert_stops_on_sigterm(deployment)
        assert time.monotonic() - started < 15, f"stopping took {time.monotonic() - started:.0f}s"
