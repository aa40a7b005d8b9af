"""Lineage in the Dagster UI, from the application's tables to the views: the source
tables as external assets with the columns the project reads, upstream of the refresh
and of the daily view; the weekly movements view as an asset of its own downstream of
customer_segment_changes, with its check; and no job that materializes what the
project does not write or what only keeps a view current."""

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterEventType,
    Definitions,
    TableSchema,
    instance_for_test,
    materialize,
)

from customer_analytics_pipeline.definitions import defs
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.defs.segment_movements_view_asset import (
    analytics_segment_movements_weekly,
    segment_movements_view_available,
)
from customer_analytics_pipeline.warehouse.segment_movements_view import SEGMENT_MOVEMENTS_VIEW_MIGRATIONS
from customer_analytics_pipeline.warehouse.source_tables import SOURCE_TABLES
from customer_analytics_pipeline.warehouse.views import ensure_view
from customer_analytics_pipeline_tests.source_reads import explaining

CUSTOMER_ANALYTICS = AssetKey("customer_analytics")
SEGMENT_CHANGES = AssetKey("customer_segment_changes")
DAILY_VIEW = AssetKey("analytics_appointments_by_location_daily")
WEEKLY_VIEW = AssetKey("analytics_segment_movements_weekly")
WEEKLY_VIEW_CHECK = AssetCheckKey(WEEKLY_VIEW, "segment_movements_view_available")
# What the refresh reads (sql/refresh, and customer_analytics_source_row_versions) and
# what the daily view reads, besides customer_analytics.
REFRESH_SOURCES = {AssetKey(t) for t in
                   ("organizations", "square_existing_clients", "bookings", "payments", "referral_profiles")}
DAILY_VIEW_SOURCES = {AssetKey(t) for t in ("bookings", "locations", "square_existing_clients")}
SOURCES = REFRESH_SOURCES | DAILY_VIEW_SOURCES
WEEKLY_VIEW_COLUMNS = ["organization_id", "week", "from_segment", "to_segment", "customers"]

graph = defs.resolve_asset_graph()


def test_source_tables_are_external_assets_with_the_columns_the_project_reads():
    for key in SOURCES:
        node = graph.get(key)
        assert node.is_external and not node.is_materializable and not node.is_observable, key
        assert node.group_name == "application" and "postgres" in node.kinds and node.description, key
        schema = node.metadata["dagster/column_schema"]
        assert isinstance(schema, TableSchema)
        assert all(column.type and column.description for column in schema.columns), key
    # Their columns are the list that test_source_tables.py holds against the SQL.
    assert {key: [c.name for c in graph.get(key).metadata["dagster/column_schema"].columns] for key in SOURCES} == {
        AssetKey(table.name): [c.name for c in table.columns] for table in SOURCE_TABLES}
    bookings = {c.name: c for c in graph.get(AssetKey("bookings")).metadata["dagster/column_schema"].columns}
    assert bookings["start_at"].type == "timestamp with time zone"
    assert not bookings["start_at"].constraints.nullable and bookings["technician_id"].constraints.nullable
    # The application's log is appended to, never read: not a source.
    assert not graph.has(AssetKey("application_logs"))


def test_the_refresh_step_and_the_views_depend_on_what_they_read():
    assert graph.get(CUSTOMER_ANALYTICS).parent_keys == REFRESH_SOURCES
    assert graph.get(SEGMENT_CHANGES).parent_keys == REFRESH_SOURCES
    assert graph.get(DAILY_VIEW).parent_keys == {CUSTOMER_ANALYTICS} | DAILY_VIEW_SOURCES
    assert graph.get(WEEKLY_VIEW).parent_keys == {SEGMENT_CHANGES}
    assert WEEKLY_VIEW in graph.get(SEGMENT_CHANGES).child_keys


def test_the_weekly_view_is_an_asset_like_the_daily_view_with_a_check_of_its_own():
    weekly, daily = graph.get(WEEKLY_VIEW), graph.get(DAILY_VIEW)
    assert weekly.is_materializable and weekly.partitions_def is None
    assert (weekly.group_name, weekly.kinds) == (daily.group_name, daily.kinds) == ("customer_analytics",
                                                                                    {"postgres", "sql"})
    assert weekly.code_version and weekly.code_version != daily.code_version and weekly.description
    assert weekly.check_keys == {WEEKLY_VIEW_CHECK}
    # Its definition is a migration's: the code version is that file's hash.
    assert SEGMENT_MOVEMENTS_VIEW_MIGRATIONS == ("migrations/0005_create_segment_changes.sql",)


def test_jobs_materialize_only_the_refresh_step():
    Definitions.validate_loadable(defs)
    refresh = defs.resolve_job_def(REFRESH_JOB_NAME)
    assert refresh.asset_layer.selected_asset_keys == {CUSTOMER_ANALYTICS, SEGMENT_CHANGES}
    for job in defs.resolve_all_job_defs():
        selected = job.asset_layer.selected_asset_keys
        assert not selected & (SOURCES | {DAILY_VIEW, WEEKLY_VIEW}) or job.name.startswith("__ASSET_JOB"), job.name
    for schedule in defs.schedules:
        assert schedule.job_name == REFRESH_JOB_NAME


def relations_read(database_url: str, query: str) -> set[AssetKey]:
    with explaining(database_url) as (reads, connect), connect() as conn:
        conn.execute(query)
    return {AssetKey(relation) for relation in reads.columns}


def test_each_view_asset_depends_on_exactly_the_tables_its_view_reads(conn, database_url):
    ensure_view(conn)
    for view in (DAILY_VIEW, WEEKLY_VIEW):
        assert relations_read(database_url, f"SELECT * FROM {view.path[-1]}") == graph.get(view).parent_keys, view


def materialize_weekly_view(database_url: str, selection=None):
    """The weekly view's asset and its check (or ``selection`` of them), run on ``database_url``."""
    with instance_for_test() as instance:
        return materialize(
            [analytics_segment_movements_weekly, segment_movements_view_available], selection=selection,
            instance=instance, resources={"database": PostgresResource(database_url=database_url)},
            raise_on_error=False,
        )


def test_materializing_the_weekly_view_reports_its_columns_and_its_check_passes(conn, database_url):
    result = materialize_weekly_view(database_url)

    assert result.success
    (materialization,) = result.asset_materializations_for_node(WEEKLY_VIEW.path[-1])
    schema = materialization.metadata["dagster/column_schema"].value
    assert [column.name for column in schema.columns] == WEEKLY_VIEW_COLUMNS
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == WEEKLY_VIEW_CHECK.name and evaluation.passed


def test_a_dropped_or_replaced_weekly_view_fails_its_check_and_its_materialization(conn, database_url):
    conn.execute("DROP VIEW analytics_segment_movements_weekly")
    result = materialize_weekly_view(database_url)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "analytics_segment_movements_weekly is missing" in failure.event_specific_data.user_failure_data.description

    conn.execute("CREATE VIEW analytics_segment_movements_weekly AS"
                 " SELECT organization_id, changed_at::date AS day FROM customer_segment_changes")
    check_only = materialize_weekly_view(database_url, AssetSelection.checks(WEEKLY_VIEW_CHECK))
    (evaluation,) = check_only.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "day" in str(evaluation.metadata["problem"].value)


def test_the_runtime_role_materializes_and_checks_the_weekly_view(conn, database_url, make_role):
    as_runtime_role = make_role(database_url)
    result = materialize_weekly_view(as_runtime_role)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
