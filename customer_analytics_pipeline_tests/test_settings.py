"""Every setting is validated where settings are read (``load_settings``): a malformed
value fails loading the code location and the command line alike, naming the variable,
in one line of the project's own, not Dagster's or zoneinfo's."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from customer_analytics_pipeline.settings import Settings

REPOSITORY = Path(__file__).resolve().parents[1]
SECRET = "S3cret-marker"

MALFORMED = {
    "cron minute out of range": ("CUSTOMER_ANALYTICS_NIGHTLY_CRON", "61 3 * * *"),
    "cron not a cron": ("CUSTOMER_ANALYTICS_NIGHTLY_CRON", "every night"),
    "cron with seconds": ("CUSTOMER_ANALYTICS_NIGHTLY_CRON", "0 0 3 * * *"),
    "unknown time zone": ("CUSTOMER_ANALYTICS_NIGHTLY_TIMEZONE", "Mars/Olympus"),
    "time zone as a path": ("CUSTOMER_ANALYTICS_NIGHTLY_TIMEZONE", "../../etc/passwd"),
    "timeout past PostgreSQL's limit": ("CUSTOMER_ANALYTICS_LOCK_TIMEOUT_SECONDS", "9999999999"),
    "negative timeout": ("CUSTOMER_ANALYTICS_STATEMENT_TIMEOUT_SECONDS", "-1"),
    "database URL": ("DATABASE_URL", f"analytics:{SECRET}@db.internal/app"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_load_settings_names_the_malformed_variable(case, settings_from_environment):
    name, value = MALFORMED[case]
    with pytest.raises(ValueError, match=name) as raised:
        settings_from_environment({name: value})
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None and (raised.value.__context__ is None or raised.value.__suppress_context__)


def test_valid_schedule_settings_are_kept(settings_from_environment):
    settings = settings_from_environment({"CUSTOMER_ANALYTICS_NIGHTLY_CRON": "30 2 * * 1-5",
                              "CUSTOMER_ANALYTICS_NIGHTLY_TIMEZONE": "Europe/Berlin"})
    assert (settings.nightly_cron, settings.nightly_timezone) == ("30 2 * * 1-5", "Europe/Berlin")


def test_settings_built_directly_ignore_the_environment_and_empty_variables_are_unset(
    settings_from_environment, monkeypatch
):
    loaded = settings_from_environment({"CUSTOMER_ANALYTICS_CUSTOMERS_PER_RUN": "150",
                                        "CUSTOMER_ANALYTICS_FRESHNESS_HOURS": "",
                                        "CUSTOMER_ANALYTICS_LOCK_TIMEOUT_SECONDS": "5"})
    limits = loaded.session_limits
    assert (loaded.customers_per_run, loaded.freshness_window.total_seconds(), limits.lock_timeout_seconds) == (
        150, 7200, 5)
    assert Settings() == Settings(customers_per_run=50_000)  # the environment above is not read
    monkeypatch.setenv("DATABASE_URL", "postgresql://analytics@db.internal/app")
    assert settings_from_environment({}).database_url_set and not Settings().database_url_set


def run(arguments: list[str], **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=REPOSITORY, env={**os.environ, **environment},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["cron minute out of range", "unknown time zone"])
def test_a_bad_schedule_setting_fails_the_code_location_naming_it(case):
    name, value = MALFORMED[case]
    result = run(["-c", "import customer_analytics_pipeline.definitions"], **{name: value})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ValueError: " + name) and repr(value) in last_line, result.stderr
    assert "ModuleNotFoundError" not in result.stderr and "DagsterInvalid" not in result.stderr, result.stderr


@pytest.mark.parametrize("case", ["cron minute out of range", "unknown time zone"])
def test_refresh_refuses_a_bad_schedule_setting(case, tmp_path):
    name, value = MALFORMED[case]
    result = run(["-m", "customer_analytics_pipeline", "refresh"], **{name: value, "DATABASE_URL": "postgresql:///x"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout
    assert result.stdout.startswith(f"error: {name} must be") and "Traceback" not in result.stderr


def test_operator_commands_load_settings_without_loading_dagster():
    result = run(["-c", "import sys\n"
                        "from customer_analytics_pipeline.operations import commands\n"
                        "from customer_analytics_pipeline.settings import load_settings\n"
                        "load_settings()\n"
                        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster')))"],
                 CUSTOMER_ANALYTICS_NIGHTLY_TIMEZONE="Europe/Berlin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
