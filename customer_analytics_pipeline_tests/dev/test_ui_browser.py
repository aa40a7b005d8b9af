"""README's UI command brings up the Dagster UI; headless Chromium sees both assets, the
eight checks, both schedules and the sensor, the source tables in the lineage graph;
after two refreshes, a partition's own row
count and organization name, and the check page naming each failing organization."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance
from playwright.sync_api import sync_playwright

from customer_analytics_pipeline.defs.factory import build_definitions
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.dev.dagster_instance import sqlalchemy_url
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.source_tables import REFRESH, tables_read_by
from customer_analytics_pipeline_tests.helpers import free_port, serves

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, installed by .ci/run
# Flags for a sandboxed, offline machine (no background calls to Google's hosts).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CUSTOMER_ANALYTICS_CHECKS = ["table_exists", "row_count_matches_clients", "sample_record_valid",
                             "segment_distribution", "avg_ticket_consistent", "first_booking_at_matches_source",
                             "referral_data_valid", "appointments_view_available", "refreshed_or_verified_recently"]


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the UI command exited with {process.returncode}"
        if serves(url):
            return
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def ui_environment(make_scratch_database, tmp_path) -> dict[str, str]:
    """The UI command's database, Dagster storage (scratch databases) and Dagster home."""
    return {
        "DATABASE_URL": make_scratch_database(),
        "DAGSTER_POSTGRES_URL": sqlalchemy_url(make_scratch_database()),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }


@pytest.fixture
def ui_url(ui_environment, tmp_path):
    """`customer-analytics ui` on a free port, on ``ui_environment``."""
    port = free_port()
    env = {**os.environ, **ui_environment}
    log = open(tmp_path / "ui.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "customer_analytics_pipeline", "ui", "--port", str(port),
         "--organizations", "3", "--clients-per-org", "20"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{url}/server_info", process)
        yield url
        # A service manager stops the command with SIGTERM to it alone: it must exit and
        # take `dagster dev`, the webserver, the daemon and the code server with it.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert process_group_gone(process.pid, timeout=30), "processes of the UI command outlived it"
    finally:
        kill_process_group(process)
        log.close()


def process_group_gone(group: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def kill_process_group(process: subprocess.Popen) -> None:
    """Whatever is left of the UI command's processes (nothing, when it stopped cleanly)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def page_text(page, url: str, expected: list[str], timeout_ms: int = 60_000) -> str:
    """The page's text once every expected word is on it (the UI renders asynchronously)."""
    page.goto(url)
    deadline = time.monotonic() + timeout_ms / 1000
    text = ""
    while time.monotonic() < deadline:
        text = page.inner_text("body")
        if all(word in text for word in expected):
            break
        page.wait_for_timeout(500)
    return text


def refresh_twice(ui_environment: dict[str, str], monkeypatch) -> list[str]:
    """A full refresh of every organization, then a `recent` one 400 days later (time alone
    moves most customers to LOST, so the segment-share check fails, a WARN, for the
    organizations with customers), through the UI's own Dagster instance; the partitions."""
    for name, value in ui_environment.items():
        monkeypatch.setenv(name, value)
    instance = DagsterInstance.get()
    try:
        keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
        job = build_definitions(Settings(), PostgresResource(database_url=ui_environment["DATABASE_URL"])
                                ).resolve_job_def(REFRESH_JOB_NAME)
        now = datetime.now(UTC)
        for mode, as_of in (("full", now), ("recent", now + timedelta(days=400))):
            result = job.execute_in_process(
                instance=instance, tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
                run_config={"ops": {"customer_analytics": {"config": {"mode": mode, "as_of": as_of.isoformat()}}}},
            )
            assert result.success
        return keys
    finally:
        instance.dispose()


def test_ui_shows_assets_checks_schedules_and_sensor(ui_url, ui_environment, monkeypatch):
    # The webserver listens on the loopback interface only, never on every interface.
    from urllib.parse import urlsplit

    import psutil

    port = urlsplit(ui_url).port
    listening = {connection.laddr.ip for connection in psutil.net_connections(kind="inet")
                 if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port}
    assert listening == {"127.0.0.1"}, f"port {port} is listened on at {listening or 'no address'}"

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/run installs it)"
    pages = {
        "/assets": ["customer_analytics", "analytics_appointments_by_location_daily"],
        "/assets/customer_analytics?view=checks": CUSTOMER_ANALYTICS_CHECKS,
        "/automation": ["hourly_recent_refresh", "nightly_full_refresh", "organization_partitions_sensor"],
    }
    keys = refresh_twice(ui_environment, monkeypatch)
    with psycopg.connect(ui_environment["DATABASE_URL"]) as conn:
        organizations = conn.execute(
            "SELECT o.id::text, o.name, count(*) FROM organizations o"
            " JOIN square_existing_clients c ON c.organization_id = o.id GROUP BY o.id, o.name ORDER BY o.id"
        ).fetchall()
    assert {organization_id for organization_id, *_ in organizations} <= set(keys)
    organization_id, name, clients = organizations[0]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            for path, expected in pages.items():
                text = page_text(page, ui_url + path, expected)
                missing = [word for word in expected if word not in text]
                assert not missing, f"{path} does not show {missing}"
            # Lineage: the application's tables the refresh reads, upstream of the table (the
            # graph shortens long names to their start and end around an ellipsis).
            path = "/assets/customer_analytics?view=lineage"
            sources = [table.name for table in tables_read_by(REFRESH)]
            lines = page_lines(page, ui_url + path, ["customer_analytics", "bookings"])
            missing = [name for name in sources if not any(labels(line, name) for line in lines)]
            assert not missing, f"{path} does not show {missing}: {lines}"
            # The partition's own row count (its clients, not the batch's rows) and its name.
            path = f"/assets/customer_analytics?view=partitions&partition={organization_id}"
            lines = page_lines(page, ui_url + path, ["dagster/row_count", name])
            assert following(lines, "dagster/row_count") == str(clients), f"{path}: {lines}"
            assert following(lines, "organization_name") == name, f"{path}: {lines}"
            # The failed segment-share check names each organization that failed, by name.
            path = "/assets/customer_analytics?view=checks&checkDetail=segment_distribution"
            expected = ["failing_organizations_by_name", *(f"{o}\t{n}\t" for o, n, _ in organizations)]
            text = page_text(page, ui_url + path, expected)
            missing = [word for word in expected if word not in text]
            assert not missing, f"{path} does not show {missing}"
            # ... and plots how many organizations failed it, evaluation after evaluation.
            plots = plotted(page)
            assert "failing_organizations" in plots, f"{path} plots {plots}"
        finally:
            browser.close()


def plotted(page, timeout_ms: int = 30_000) -> list[str]:
    """The labels under the check page's "Plots" heading, once its plots have rendered."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        after = page.inner_text("body").partition("\nPlots\n")[2]
        labels = [line.strip() for line in after.splitlines() if line.strip()]
        if labels or time.monotonic() > deadline:
            return labels
        page.wait_for_timeout(500)


def page_lines(page, url: str, expected: list[str]) -> list[str]:
    """The page's non-empty lines once every expected word is on it."""
    return [line.strip() for line in page_text(page, url, expected).splitlines() if line.strip()]


def labels(line: str, name: str) -> bool:
    """Whether ``line`` is ``name`` as a graph node shows it: whole, or its start and end
    around an ellipsis."""
    start, ellipsis, end = line.partition("\u2026")
    return line == name or bool(ellipsis and start and end and name.startswith(start) and name.endswith(end))


def following(lines: list[str], label: str) -> str | None:
    """The line after ``label``: how the UI lays out a metadata entry's value."""
    return next((lines[i + 1] for i, line in enumerate(lines[:-1]) if line == label), None)
