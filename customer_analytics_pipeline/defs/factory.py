"""The one factory of the Dagster layer: every Dagster object of the project, built from
one ``Settings``."""

from dagster import Definitions, EnvVar

from customer_analytics_pipeline.defs.appointments_view_asset import analytics_appointments_by_location_daily
from customer_analytics_pipeline.defs.customer_analytics_asset import build_customer_analytics
from customer_analytics_pipeline.defs.freshness import build_freshness_alarm
from customer_analytics_pipeline.defs.jobs import refresh_customer_analytics_job
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.defs.schedules import build_schedules
from customer_analytics_pipeline.defs.segment_movements_view_asset import (
    analytics_segment_movements_weekly,
    segment_movements_view_available,
)
from customer_analytics_pipeline.defs.sensors import organization_partitions_sensor, refresh_failure_sensor
from customer_analytics_pipeline.defs.source_assets import SOURCE_TABLE_SPECS
from customer_analytics_pipeline.settings import DATABASE_URL_VARIABLE, Settings


def database_resource(settings: Settings) -> PostgresResource:
    """DATABASE_URL through EnvVar (never shown, stored or logged), or the embedded server
    when it is unset; the session limits from the settings."""
    return PostgresResource.from_settings(
        settings, EnvVar(DATABASE_URL_VARIABLE) if settings.database_url_set else None
    )


def build_definitions(settings: Settings, database: PostgresResource | None = None) -> Definitions:
    """Everything the project defines, from ``settings``; bound to ``database`` when given
    (tests bind a scratch one), else to ``database_resource(settings)``."""
    freshness_check, freshness_job, freshness_sensor = build_freshness_alarm(settings.freshness_window)
    return Definitions(
        # The application's tables first: external assets, upstream of everything else.
        assets=[*SOURCE_TABLE_SPECS, build_customer_analytics(settings), analytics_appointments_by_location_daily,
                analytics_segment_movements_weekly],
        asset_checks=[freshness_check, segment_movements_view_available],
        jobs=[refresh_customer_analytics_job, freshness_job],
        schedules=build_schedules(settings),
        sensors=[organization_partitions_sensor, refresh_failure_sensor, freshness_sensor],
        resources={"database": database or database_resource(settings)},
    )
