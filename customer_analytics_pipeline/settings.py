"""Operational settings read from the environment (documented in README), with defaults."""

import os
from dataclasses import dataclass
from datetime import timedelta


def _int_setting(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    organizations_per_run: int
    nightly_cron: str
    nightly_timezone: str
    hourly_cron: str
    freshness_window: timedelta
    database_pool: str
    statement_timeout_seconds: int
    lock_timeout_seconds: int
    idle_in_transaction_timeout_seconds: int


def load_settings() -> Settings:
    return Settings(
        # Partition-range runs: how many organizations one scheduled run refreshes together.
        organizations_per_run=_int_setting("CUSTOMER_ANALYTICS_ORGANIZATIONS_PER_RUN", 100),
        nightly_cron=os.environ.get("CUSTOMER_ANALYTICS_NIGHTLY_CRON", "0 3 * * *"),
        nightly_timezone=os.environ.get("CUSTOMER_ANALYTICS_NIGHTLY_TIMEZONE", "UTC"),
        hourly_cron="0 * * * *",  # SPEC section 5
        freshness_window=timedelta(hours=_int_setting("CUSTOMER_ANALYTICS_FRESHNESS_HOURS", 2)),
        # Dagster concurrency pool capping refresh steps that hit the database at once
        # (its limit is set in dagster.yaml).
        database_pool="customer_analytics_database",
        # Session limits of every connection the pipeline opens (0: no limit); see PostgresResource.
        statement_timeout_seconds=_int_setting("CUSTOMER_ANALYTICS_STATEMENT_TIMEOUT_SECONDS", 3600, minimum=0),
        lock_timeout_seconds=_int_setting("CUSTOMER_ANALYTICS_LOCK_TIMEOUT_SECONDS", 600, minimum=0),
        idle_in_transaction_timeout_seconds=_int_setting(
            "CUSTOMER_ANALYTICS_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", 60, minimum=0
        ),
    )
