"""The project's settings: one object, read from the environment in one place.

``load_settings(environ)`` is the only code that reads configuration from the
environment (``definitions.py`` calls it once for the code location; the command line
calls it for its own run). A malformed value fails there, naming the variable. The
database password never lands here: the code location binds ``DATABASE_URL`` through
Dagster's ``EnvVar``, and only whether it is set is recorded.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from customer_analytics_pipeline.warehouse.connection import SessionLimits

DATABASE_URL_VARIABLE = "DATABASE_URL"


@dataclass(frozen=True)
class Settings:
    """What an operator can set (README's Configuration table), with its defaults."""

    # Scheduled runs are balanced by size: about this many customers per run (an
    # organization larger than that runs alone).
    customers_per_run: int = 50_000
    nightly_cron: str = "0 3 * * *"
    nightly_timezone: str = "UTC"
    hourly_cron: str = "0 * * * *"  # docs/contract.md, Interfaces; not configurable
    freshness_window: timedelta = timedelta(hours=2)
    # Whether DATABASE_URL is set (its value is bound through EnvVar); else the embedded server.
    database_url_set: bool = False
    embedded_data_dir: str = ".pgdata"
    session_limits: SessionLimits = SessionLimits()
    # customer_segment_changes rows older than this are deleted by full runs.
    segment_history_days: int = 730


def _int_setting(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings from ``environ``, defaults for what is unset; ValueError naming the
    variable for what is malformed."""
    defaults, limits = Settings(), SessionLimits()
    return Settings(
        customers_per_run=_int_setting(environ, "CUSTOMER_ANALYTICS_CUSTOMERS_PER_RUN", defaults.customers_per_run),
        nightly_cron=environ.get("CUSTOMER_ANALYTICS_NIGHTLY_CRON") or defaults.nightly_cron,
        nightly_timezone=environ.get("CUSTOMER_ANALYTICS_NIGHTLY_TIMEZONE") or defaults.nightly_timezone,
        freshness_window=timedelta(hours=_int_setting(
            environ, "CUSTOMER_ANALYTICS_FRESHNESS_HOURS", int(defaults.freshness_window.total_seconds() // 3600)
        )),
        database_url_set=bool(environ.get(DATABASE_URL_VARIABLE)),
        embedded_data_dir=environ.get("CUSTOMER_ANALYTICS_PGDATA") or defaults.embedded_data_dir,
        segment_history_days=_int_setting(
            environ, "CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS", defaults.segment_history_days
        ),
        session_limits=SessionLimits(
            statement_timeout_seconds=_int_setting(
                environ, "CUSTOMER_ANALYTICS_STATEMENT_TIMEOUT_SECONDS", limits.statement_timeout_seconds, minimum=0
            ),
            lock_timeout_seconds=_int_setting(
                environ, "CUSTOMER_ANALYTICS_LOCK_TIMEOUT_SECONDS", limits.lock_timeout_seconds, minimum=0
            ),
            idle_in_transaction_timeout_seconds=_int_setting(
                environ, "CUSTOMER_ANALYTICS_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS",
                limits.idle_in_transaction_timeout_seconds, minimum=0,
            ),
        ),
    )
