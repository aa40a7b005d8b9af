"""The refresh job the schedules launch: customer_analytics for a range of organization
partitions, its checks, then the view (recreated only when missing or changed) and its check."""

from dagster import AssetSelection, define_asset_job

from customer_analytics_pipeline.assets.appointments_view import analytics_appointments_by_location_daily
from customer_analytics_pipeline.assets.customer_analytics import customer_analytics

REFRESH_JOB_NAME = "refresh_customer_analytics"

refresh_customer_analytics_job = define_asset_job(
    REFRESH_JOB_NAME,
    # AssetSelection.assets includes the assets' checks.
    selection=AssetSelection.assets(customer_analytics, analytics_appointments_by_location_daily),
    description="Refreshes customer_analytics for a range of organizations, checks it, keeps the view current.",
)
