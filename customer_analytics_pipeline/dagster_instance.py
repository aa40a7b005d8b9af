"""The Dagster instance the command line uses: $DAGSTER_HOME, or ./.dagster_home with the
repository's dagster.yaml, so the CLI, `dagster dev` and the UI share run history."""

import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

DEFAULT_DAGSTER_HOME = ".dagster_home"


def ensure_dagster_home() -> Path:
    """Sets DAGSTER_HOME (default ./.dagster_home) and gives it the repository's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    project_config = Path.cwd() / "dagster.yaml"
    if project_config.is_file() and project_config.resolve() != (home / "dagster.yaml").resolve():
        shutil.copyfile(project_config, home / "dagster.yaml")
    return home


def get_instance() -> DagsterInstance:
    ensure_dagster_home()
    return DagsterInstance.get()
