"""The Dagster ``Definitions`` of the project (``customer_analytics_pipeline.definitions:defs``)."""

import os

from dagster import Definitions, EnvVar

from customer_analytics_pipeline.assets.appointments_view import (
    analytics_appointments_by_location_daily,
    appointments_view_checks,
)
from customer_analytics_pipeline.assets.customer_analytics import customer_analytics
from customer_analytics_pipeline.checks.customer_analytics_checks import customer_analytics_checks
from customer_analytics_pipeline.resources import PostgresResource


def database_resource() -> PostgresResource:
    """DATABASE_URL through EnvVar (never shown or logged), or the embedded server when unset."""
    if os.environ.get("DATABASE_URL"):
        return PostgresResource(database_url=EnvVar("DATABASE_URL"))
    return PostgresResource()


defs = Definitions(
    assets=[customer_analytics, analytics_appointments_by_location_daily],
    asset_checks=[customer_analytics_checks, appointments_view_checks],
    resources={"database": database_resource()},
)
