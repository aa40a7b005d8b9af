"""The Definitions load and validate the way `dagster` loads them from workspace.yaml."""

import os
import subprocess
import sys
from pathlib import Path

from customer_analytics_pipeline.definitions import defs

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate_passes_on_workspace_yaml(tmp_path):
    # A throwaway instance of its own: validation needs no storage.
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    env.pop("DAGSTER_POSTGRES_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_customer_analytics_is_partitioned_by_organizations():
    asset = defs.resolve_assets_def("customer_analytics")
    assert asset.partitions_def.name == "organizations"
