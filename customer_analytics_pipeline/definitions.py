"""The Dagster ``Definitions`` of the project (``customer_analytics_pipeline.definitions:defs``)."""

import os

from dagster import Definitions, EnvVar

from customer_analytics_pipeline.assets.appointments_view import (
    analytics_appointments_by_location_daily,
    appointments_view_checks,
)
from customer_analytics_pipeline.assets.customer_analytics import customer_analytics
from customer_analytics_pipeline.checks.customer_analytics_checks import customer_analytics_checks
from customer_analytics_pipeline.jobs import refresh_customer_analytics_job
from customer_analytics_pipeline.resources import PostgresResource
from customer_analytics_pipeline.schedules import hourly_recent_refresh, nightly_full_refresh
from customer_analytics_pipeline.settings import load_settings
from customer_analytics_pipeline.sensors import organization_partitions_sensor, refresh_failure_sensor


def database_resource() -> PostgresResource:
    """DATABASE_URL through EnvVar (never shown or logged), or the embedded server when
    unset; the session limits from the settings."""
    settings = load_settings()
    limits = {
        "statement_timeout_seconds": settings.statement_timeout_seconds,
        "lock_timeout_seconds": settings.lock_timeout_seconds,
        "idle_in_transaction_timeout_seconds": settings.idle_in_transaction_timeout_seconds,
    }
    if os.environ.get("DATABASE_URL"):
        return PostgresResource(database_url=EnvVar("DATABASE_URL"), **limits)
    return PostgresResource(**limits)


def build_definitions(database: PostgresResource) -> Definitions:
    """Everything the project defines, bound to ``database`` (tests bind a scratch one)."""
    return Definitions(
        assets=[customer_analytics, analytics_appointments_by_location_daily],
        asset_checks=[customer_analytics_checks, appointments_view_checks],
        jobs=[refresh_customer_analytics_job],
        schedules=[hourly_recent_refresh, nightly_full_refresh],
        sensors=[organization_partitions_sensor, refresh_failure_sensor],
        resources={"database": database},
    )


defs = build_definitions(database_resource())
