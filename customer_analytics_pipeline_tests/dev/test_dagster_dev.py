"""The ways into Dagster from a checkout: the instance configurations behind `dg dev` and
`dagster dev` without DAGSTER_HOME (docs/decisions/0028)."""

import subprocess
from pathlib import Path

import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

REPOSITORY = Path(__file__).resolve().parents[2]
DEVELOPMENT_DAGSTER_YAML = REPOSITORY / "dagster.yaml"
PRODUCTION_DAGSTER_YAML = REPOSITORY / "deploy" / "dagster.yaml"
# `dagster dev` run without DAGSTER_HOME keeps its instance in a folder of this prefix in
# the current directory (dagster._cli.utils.TMP_DAGSTER_HOME_PREFIX) and removes it on exit.
TEMPORARY_DAGSTER_HOME_PREFIX = ".tmp_dagster_home_"


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


def test_the_temporary_instance_folder_is_ignored_by_git():
    """`dg dev` or `dagster dev` killed (not stopped) leaves its temporary instance folder behind."""
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{TEMPORARY_DAGSTER_HOME_PREFIX}abc123/storage"],
                             cwd=REPOSITORY, capture_output=True)
    assert ignored.returncode == 0, "the temporary instance folder of dg dev / dagster dev is not in .gitignore"
