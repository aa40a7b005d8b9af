"""Operational settings read from the environment (documented in README), with defaults."""

import os
from dataclasses import dataclass
from datetime import timedelta


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    organizations_per_run: int
    nightly_cron: str
    nightly_timezone: str
    hourly_cron: str
    freshness_window: timedelta
    database_pool: str


def load_settings() -> Settings:
    return Settings(
        # Partition-range runs: how many organizations one scheduled run refreshes together.
        organizations_per_run=_positive_int("CUSTOMER_ANALYTICS_ORGANIZATIONS_PER_RUN", 100),
        nightly_cron=os.environ.get("CUSTOMER_ANALYTICS_NIGHTLY_CRON", "0 3 * * *"),
        nightly_timezone=os.environ.get("CUSTOMER_ANALYTICS_NIGHTLY_TIMEZONE", "UTC"),
        hourly_cron="0 * * * *",  # SPEC section 5
        freshness_window=timedelta(hours=_positive_int("CUSTOMER_ANALYTICS_FRESHNESS_HOURS", 2)),
        # Dagster concurrency pool capping refresh steps that hit the database at once
        # (its limit is set in dagster.yaml).
        database_pool="customer_analytics_database",
    )
