"""The refresh job the schedules launch: customer_analytics (with customer_segment_changes,
written by the same step) for a range of organization partitions, or a list of them, and
the eight checks that step evaluates. The view needs no step of its own: the refresh
keeps its definition current.

Its step runs in the run worker's own process (``in_process_executor``). With Dagster's
default multiprocess executor each step is a child process of the run worker, and a run
worker killed with SIGKILL (an OOM kill) leaves that child running: re-parented to PID 1,
it committed the refresh and logged STEP_SUCCESS into a run already marked FAILED. In the
run worker's process the refresh dies with the run: its connection closes and PostgreSQL
rolls its transaction back."""

from dagster import AssetCheckKey, AssetKey, AssetSelection, define_asset_job, in_process_executor

from customer_analytics_pipeline.warehouse.checks.evaluation import FRESHNESS_CHECK
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_TABLE, SEGMENT_CHANGES_TABLE

REFRESH_JOB_NAME = "refresh_customer_analytics"

refresh_customer_analytics_job = define_asset_job(
    REFRESH_JOB_NAME,
    # AssetSelection.assets includes the assets' checks; the freshness check runs on its
    # own (defs/freshness.py): it judges every organization, not the run's.
    selection=AssetSelection.assets(AssetKey(CUSTOMER_ANALYTICS_TABLE), AssetKey(SEGMENT_CHANGES_TABLE))
    - AssetSelection.checks(AssetCheckKey(AssetKey(CUSTOMER_ANALYTICS_TABLE), FRESHNESS_CHECK)),
    executor_def=in_process_executor,
    description="Refreshes customer_analytics and its segment-change log for a range or a list of organizations, "
    "keeps the view's definition current and runs the eight checks on those organizations.",
)
