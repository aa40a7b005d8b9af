"""README's run command, end to end in a subprocess, on scratch databases."""

import os
import subprocess
import sys

import psycopg

from customer_analytics_pipeline.dagster_instance import sqlalchemy_url


def test_demo_loads_data_and_refreshes_every_organization(make_scratch_database, tmp_path):
    database_url = make_scratch_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DAGSTER_POSTGRES_URL": sqlalchemy_url(make_scratch_database()),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "customer_analytics_pipeline", "demo",
         "--organizations", "4", "--clients-per-org", "30", "--batch-size", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    output = completed.stdout
    assert "loading demo data" in output and "batch 2:" in output
    assert "checks 8/8 passed" in output and "failed" not in output
    with psycopg.connect(database_url) as conn:
        clients, rows, refreshed, organizations = conn.execute(
            "SELECT (SELECT count(*) FROM square_existing_clients), (SELECT count(*) FROM customer_analytics),"
            " (SELECT count(*) FROM customer_analytics_refresh_state), (SELECT count(*) FROM organizations)"
        ).fetchone()
    assert rows == clients > 0 and refreshed == organizations == 4
    assert f"customer_analytics: {clients} customers" in output
