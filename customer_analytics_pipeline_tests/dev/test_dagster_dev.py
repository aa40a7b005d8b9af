"""The ways into Dagster from a checkout, as README gives them: `dg check defs`,
`dg list defs`, `dg dev`, plain `dagster dev` and `customer-analytics ui`, each run from
the repository root in a newcomer's environment (no DAGSTER_HOME, no Dagster variable
but what `ui` is given). The servers must answer over HTTP and start without a warning
a newcomer cannot act on; the instance configurations behind them are checked too
(docs/decisions/0028)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import distributions, version
from pathlib import Path

import psutil
import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from customer_analytics_pipeline.definitions import defs
from customer_analytics_pipeline.operations.serve import CODE_LOCATION_MODULE, CODE_LOCATION_NAME
from customer_analytics_pipeline_tests.helpers import free_port, serves

REPOSITORY = Path(__file__).resolve().parents[2]
DEVELOPMENT_DAGSTER_YAML = REPOSITORY / "dagster.yaml"
PRODUCTION_DAGSTER_YAML = REPOSITORY / "deploy" / "dagster.yaml"
BIN = Path(sys.executable).parent
# `dagster dev` run without DAGSTER_HOME keeps its instance in a folder of this prefix in
# the current directory (dagster._cli.utils.TMP_DAGSTER_HOME_PREFIX) and removes it on exit.
TEMPORARY_DAGSTER_HOME_PREFIX = ".tmp_dagster_home_"
SERVE_TIMEOUT_SECONDS = 240
# The daemon evaluates the sensors as it starts: the first to touch the database is done
# once the partitions sensor reports (skipped, added partitions, or an error).
SENSORS_EVALUATED = re.compile(r"sensor organization_partitions_sensor\b|Added partition keys", re.IGNORECASE)
STOP_TIMEOUT_SECONDS = 60
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# What counts as a warning in start-up output: Python warnings (`...Warning: message`),
# Dagster's WARNING log lines, and tracebacks.
WARNING_LINE = re.compile(r"\w+Warning: |\bWARNING\b|Traceback")
# Dagster's own pointer from `dagster dev` to `dg dev`: a newcomer who reads it can act on it.
DAGSTER_DEV_POINTS_TO_DG_DEV = re.compile(r"SupersessionWarning: .*`dev_command`.*Use 'dg dev' instead")


def newcomer_environment(home: Path, **variables: str) -> dict[str, str]:
    """This process's environment without anything a fresh checkout would not have set:
    no DAGSTER_* or CUSTOMER_ANALYTICS_* variable, no DATABASE_URL (unless given), no XDG_*
    variable (a container's or an ssh session's), and HOME a folder of the test's own
    (with DAGSTER_HOME unset, Dagster keeps its telemetry notice's id and logs under
    ~/.dagster)."""
    environment = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("DAGSTER_", "CUSTOMER_ANALYTICS_", "XDG_")) and name != "DATABASE_URL"
    }
    home.mkdir(parents=True, exist_ok=True)
    return {**environment, "HOME": str(home), **variables}


def plain(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def warnings_in(output: str, allowed: re.Pattern | None = None) -> list[str]:
    return [line for line in plain(output).splitlines()
            if WARNING_LINE.search(line) and not (allowed and allowed.search(line))]


def temporary_dagster_homes() -> set[Path]:
    return set(REPOSITORY.glob(TEMPORARY_DAGSTER_HOME_PREFIX + "*"))


def stop(process: subprocess.Popen, stop_signal: signal.Signals, whole_group: bool) -> None:
    """Stops the command as a terminal's Ctrl-C (SIGINT to its process group) or a service
    manager (SIGTERM to it alone) would, then kills whatever is left of it: its process
    group and every process it started (``ui`` starts `dg dev` in a group of its own)."""
    started = []
    with suppress(psutil.Error):
        started = psutil.Process(process.pid).children(recursive=True)
    try:
        with suppress(ProcessLookupError):
            if whole_group:
                os.killpg(process.pid, stop_signal)
            else:
                process.send_signal(stop_signal)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        psutil.wait_procs(started, timeout=10)
    finally:
        for group in {process.pid, *(p.pid for p in started)}:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        for leftover in started:
            with suppress(psutil.Error):
                leftover.kill()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


@contextmanager
def serving(command: list[str], port: int, env: dict[str, str], log: Path,
            stop_signal: signal.Signals = signal.SIGINT, whole_group: bool = True) -> Iterator[str]:
    """Runs ``command`` from the repository root until the UI on ``port`` answers
    GET /server_info and the daemon has evaluated the sensors; yields its output so far.
    Always stops it and its processes, and removes a temporary Dagster instance folder it
    left in the repository."""
    before = temporary_dagster_homes()
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=REPOSITORY, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_SECONDS
        while not serves(f"http://127.0.0.1:{port}/server_info"):
            assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no answer within {SERVE_TIMEOUT_SECONDS}s:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        while not SENSORS_EVALUATED.search(log.read_text()):
            assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no sensor evaluated:\n{log.read_text()[-4000:]}"
            time.sleep(1)
        time.sleep(3)  # what the other sensors print
        yield log.read_text()
    finally:
        stop(process, stop_signal, whole_group)
        for folder in temporary_dagster_homes() - before:
            shutil.rmtree(folder, ignore_errors=True)


def run_dg(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dg"), *arguments], cwd=REPOSITORY, env=newcomer_environment(tmp_path / "home"),
        capture_output=True, text=True, timeout=300,
    )


# --- the instance configurations ---------------------------------------------------------


def test_the_repository_root_instance_config_needs_no_variable(tmp_path, monkeypatch):
    """`dagster dev` and `dg dev` without DAGSTER_HOME read ./dagster.yaml into a temporary
    instance: it must load with nothing set, keeping its storage in that instance's folder."""
    monkeypatch.delenv("DAGSTER_POSTGRES_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path), config_dir=str(REPOSITORY))) as instance:
        assert Path(instance.root_directory) == tmp_path
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.run_launcher.__class__.__name__ == "PidCheckingRunLauncher"


def test_the_production_instance_config_is_the_development_one_with_postgres_storage():
    """deploy/dagster.yaml (copied into DAGSTER_HOME by the runbook, `demo` and `ui`) and
    ./dagster.yaml differ only in the storage: the UI of `dg dev` shows the pools, run
    monitoring and freshness production has."""
    production = yaml.safe_load(PRODUCTION_DAGSTER_YAML.read_text())
    development = yaml.safe_load(DEVELOPMENT_DAGSTER_YAML.read_text())
    assert production.pop("storage") == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    assert "storage" not in development
    assert production == development
    assert development["telemetry"] == {"enabled": False}


# --- dependencies ------------------------------------------------------------------------


def test_dagster_distributions_are_one_pinned_release():
    """dagster-postgres pins dagster exactly, and so does dagster-dg-cli: every Dagster
    distribution in the dependencies is pinned, and every one installed is of one release
    (the core packages' version or the libraries' matching 0.x version)."""
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in map(Requirement, project["dependencies"]):
        if canonicalize_name(requirement.name).startswith("dagster"):
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{requirement} is not pinned exactly"
            pins[canonicalize_name(requirement.name)] = specifier.version
    assert {"dagster", "dagster-webserver", "dagster-postgres", "dagster-dg-cli"} <= pins.keys(), pins
    for name, pinned in pins.items():
        assert version(name) == pinned, f"{name} {version(name)} installed, {pinned} pinned"
    release = {pins["dagster"], pins["dagster-postgres"]}
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()
                 if canonicalize_name(d.metadata["Name"]).startswith("dagster")}
    assert {name: v for name, v in installed.items() if v not in release} == {}


def test_every_way_in_names_the_same_code_location():
    """`dg` ([tool.dg.project]), `dagster dev` run here ([tool.dagster]), workspace.yaml and
    the runbook's code server load one module under one name."""
    tool = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]
    (workspace_entry,) = yaml.safe_load((REPOSITORY / "workspace.yaml").read_text())["load_from"]
    locations = {
        "[tool.dg.project]": (tool["dg"]["project"]["code_location_target_module"],
                              tool["dg"]["project"]["code_location_name"]),
        "[tool.dagster]": (tool["dagster"]["module_name"], tool["dagster"]["code_location_name"]),
        "workspace.yaml": (workspace_entry["python_module"]["module_name"],
                           workspace_entry["python_module"]["location_name"]),
        "code-server": (CODE_LOCATION_MODULE, CODE_LOCATION_NAME),
    }
    assert set(locations.values()) == {("customer_analytics_pipeline.definitions", "customer_analytics_pipeline")}, (
        locations
    )
    assert tool["dg"]["directory_type"] == "project"


# --- dg check defs / dg list defs --------------------------------------------------------


def test_dg_check_defs_passes_from_the_repository_root(tmp_path):
    result = run_dg(tmp_path, "check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout, result.stdout + result.stderr
    assert warnings_in(result.stdout + result.stderr) == []


def test_dg_list_defs_lists_the_code_location(tmp_path):
    result = run_dg(tmp_path, "list", "defs", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(result.stdout)
    assert {asset["asset_key"] for asset in listed["assets"]} == {
        key.to_user_string() for key in defs.resolve_all_asset_keys()
    }
    assert {schedule["name"] for schedule in listed["schedules"]} == {schedule.name for schedule in defs.schedules}
    assert {sensor["name"] for sensor in listed["sensors"]} == {sensor.name for sensor in defs.sensors}
    assert len(listed["asset_checks"]) == len(defs.resolve_asset_graph().asset_check_keys)


# --- dg dev / dagster dev / customer-analytics ui ----------------------------------------


@contextmanager
def embedded_server_stopped_afterwards(pgdata: Path) -> Iterator[None]:
    """The embedded PostgreSQL stops with the last process using it; stops it (fast
    shutdown, by the pid in its postmaster.pid) if a killed process left it running."""
    try:
        yield
    finally:
        with suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGINT)


def test_dg_dev_after_the_demo_serves_the_ui_without_warnings(tmp_path):
    """README's way without a server: `customer-analytics demo`, then `dg dev` in the
    repository root, both on the embedded PostgreSQL (no DATABASE_URL): the project's code
    location, a temporary instance configured by ./dagster.yaml."""
    pgdata = tmp_path / "pgdata"
    env = newcomer_environment(tmp_path / "home", CUSTOMER_ANALYTICS_PGDATA=str(pgdata))
    port = free_port()
    with embedded_server_stopped_afterwards(pgdata):
        demo = subprocess.run(
            [str(BIN / "customer-analytics"), "demo", "--organizations", "2", "--clients-per-org", "5"],
            cwd=tmp_path, env={**env, "DAGSTER_HOME": str(tmp_path / "demo_home")},
            capture_output=True, text=True, timeout=600,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        with serving([str(BIN / "dg"), "dev", "--port", str(port)], port, env, tmp_path / "dg-dev.log") as output:
            assert warnings_in(output) == [], plain(output)[-4000:]
            assert "organization partitions: 2 to add" in output, plain(output)[-4000:]


def test_dagster_dev_serves_the_ui_without_dagster_home(database_url, tmp_path):
    """Plain `dagster dev` in the repository root (workspace.yaml, ./dagster.yaml): it used
    to stop on DAGSTER_POSTGRES_URL. Its only warning is Dagster's pointer to `dg dev`."""
    port = free_port()
    env = newcomer_environment(tmp_path / "home", DATABASE_URL=database_url)
    with serving([str(BIN / "dagster"), "dev", "--port", str(port)], port, env, tmp_path / "dagster-dev.log") as output:
        assert warnings_in(output, allowed=DAGSTER_DEV_POINTS_TO_DG_DEV) == [], plain(output)[-4000:]
        assert "DAGSTER_POSTGRES_URL" not in output


def test_customer_analytics_ui_with_nothing_set_starts_without_warnings(tmp_path):
    """README's one command, from the repository root with nothing set: the embedded
    server, Dagster's storage in its `dagster` database through PgBouncer where pgbouncer
    is installed (as root too, where the server and pgbouncer run as users of their own).
    Neither `dagster dev`'s supersession warning nor Dagster's note that ./dagster.yaml is
    not used (the instance is DAGSTER_HOME, with deploy/dagster.yaml copied in)."""
    port = free_port()
    pgdata = tmp_path / "pgdata"
    # DAGSTER_HOME only keeps the default ./.dagster_home out of the repository.
    env = newcomer_environment(tmp_path / "home", CUSTOMER_ANALYTICS_PGDATA=str(pgdata),
                               DAGSTER_HOME=str(tmp_path / "dagster_home"))
    command = [str(BIN / "customer-analytics"), "ui", "--port", str(port), "--organizations", "2",
               "--clients-per-org", "5"]
    with (embedded_server_stopped_afterwards(pgdata),
          serving(command, port, env, tmp_path / "ui.log", signal.SIGTERM, whole_group=False) as output):
        assert warnings_in(output) == [], plain(output)[-4000:]


# --- the docs ----------------------------------------------------------------------------

README_LIMIT_CHARACTERS = 8000
START_COMMANDS = ("customer-analytics ui", "dg dev", "dagster dev", "dg check defs", "dg list defs")


def test_readme_and_runbook_say_how_to_start_dagster():
    readme = (REPOSITORY / "README.md").read_text()
    runbook = (REPOSITORY / "docs" / "operations.md").read_text()
    assert len(readme) < README_LIMIT_CHARACTERS, len(readme)
    for name, text in (("README.md", readme), ("docs/operations.md", runbook)):
        assert [command for command in START_COMMANDS if command not in text] == [], name


def test_the_temporary_instance_folder_is_ignored_by_git():
    """`dg dev` or `dagster dev` killed (not stopped) leaves its temporary instance folder behind."""
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{TEMPORARY_DAGSTER_HOME_PREFIX}abc123/storage"],
                             cwd=REPOSITORY, capture_output=True)
    assert ignored.returncode == 0, "the temporary instance folder of dg dev / dagster dev is not in .gitignore"
