"""The schedules end to end: ticks evaluated as the daemon evaluates them, their runs
executed, and after every tick every organization equal to a from-scratch recomputation
at the tick's as_of. The hourly tick runs exactly the organizations that changed or
whose segments time moves; a quiet hour launches nothing and keeps the asset fresh;
missed hours raise one freshness alarm."""

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterEventType,
    EventRecordsFilter,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from customer_analytics_pipeline.defs.factory import build_definitions
from customer_analytics_pipeline.defs.freshness import FRESHNESS_JOB_NAME as FRESHNESS_JOB
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    organizations_of_run,
    partition_range,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.defs.schedules import build_schedules
from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_TABLE
from customer_analytics_pipeline_tests.helpers import organization_ids, refresh_job
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)

FIFTY = GeneratorSettings(organizations=50, clients_per_org=12, seed=11)
T0 = FIFTY.anchor
KEY = AssetKey(CUSTOMER_ANALYTICS_TABLE)


def schedules(customers_per_run: int = 50_000):
    hourly, nightly = build_schedules(Settings(customers_per_run=customers_per_run))
    return hourly, nightly


def organizations_of(request: RunRequest, instance) -> list[str]:
    """What a run request refreshes: its config's organizations, else its whole range."""
    organizations = request.run_config["ops"]["customer_analytics"]["config"].get("organizations")
    if organizations is not None:
        assert request.tags[PARTITION_TAG] == organizations[0] and PARTITION_RANGE_START_TAG not in request.tags
        return list(organizations)
    return partition_range(instance, request.tags[PARTITION_RANGE_START_TAG], request.tags[PARTITION_RANGE_END_TAG])


def evaluate(schedule, instance, database_url, tick):
    """One tick as the daemon evaluates it, then each of its runs executed to success;
    no run plans or reports a partition it does not refresh."""
    # Closed at once: the context enters an instance of its own, and one left to the garbage
    # collector resets Dagster's current defs-state storage out of order (a later test's
    # definitions then resolve a dead instance).
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                resources={"database": PostgresResource(database_url=database_url)}) as context:
        data = schedule.evaluate_tick(context)
    job = refresh_job(database_url)
    for request in data.run_requests or []:
        result = job.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags)
        assert result.success
        assert partitions_with_events(instance, result.run_id) == set(organizations_of(request, instance))
    return data


def partitions_with_events(instance, run_id) -> set[str]:
    """The partitions of customer_analytics a run planned or materialized."""
    partitions = set()
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event and event.event_type in (DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                                          DagsterEventType.ASSET_MATERIALIZATION) and event.asset_key == KEY:
            partitions.add(event.partition)
    return partitions


def moved_organizations(conn, as_of) -> set[str]:
    """Organizations some of whose customers a recomputation at as_of gives another segment."""
    expected = expected_customer_analytics(load_source_frames(conn), as_of)
    stored = {(o, c): s for o, c, s in conn.execute(
        "SELECT organization_id::text, square_customer_id, customer_segment FROM customer_analytics")}
    return {row.organization_id for row in expected.itertuples()
            if stored.get((row.organization_id, row.square_customer_id)) != row.customer_segment}


def assert_matches_oracle(conn, as_of):
    assert_frames_equal_cellwise(read_customer_analytics(conn), expected_customer_analytics(load_source_frames(conn),
                                                                                           as_of))


@pytest.fixture
def fifty(conn, instance):
    generate(conn, FIFTY, progress=lambda message: None)
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, organization_ids(conn))
    return conn


def change_three_organizations(conn) -> list[str]:
    """A hard delete of a customer's only booking, a payment synced late (stamped weeks
    back) and a status flip, each in another organization."""
    single = conn.execute(
        "SELECT organization_id::text, square_customer_id FROM bookings WHERE square_customer_id IS NOT NULL"
        " GROUP BY 1, 2 HAVING count(*) = 1 ORDER BY 1, 2 LIMIT 1").fetchone()
    conn.execute("DELETE FROM bookings WHERE organization_id = %s AND square_customer_id = %s", single)
    late_org, late_customer = conn.execute(
        "SELECT organization_id::text, square_customer_id FROM square_existing_clients WHERE organization_id <> %s"
        " ORDER BY 1, 2 LIMIT 1", (single[0],)).fetchone()
    stamp = T0 - timedelta(days=30)
    conn.execute("INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, tip_cents,"
                 " created_at, updated_at) VALUES (%s, 'late', %s, 'COMPLETED', 9900, 100, %s, %s)",
                 (late_org, late_customer, stamp, stamp))
    flipped = conn.execute(
        "UPDATE bookings SET status = 'CANCELLED_BY_SELLER' WHERE (organization_id, id) = (SELECT organization_id, id"
        " FROM bookings WHERE status = 'ACCEPTED' AND organization_id NOT IN (%s, %s) ORDER BY 1, 2 LIMIT 1)"
        " RETURNING organization_id::text", (single[0], late_org)).fetchone()[0]
    return [single[0], late_org, flipped]


def test_ticks_refresh_exactly_what_changed_and_leave_every_organization_exact(fifty, database_url, instance):
    hourly, nightly = schedules(customers_per_run=100)
    keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)

    night = evaluate(nightly, instance, database_url, T0)
    covered = [o for request in night.run_requests for o in organizations_of(request, instance)]
    assert sorted(covered) == sorted(keys) and len(night.run_requests) > 1
    assert_matches_oracle(fifty, T0)

    changed = change_three_organizations(fifty)
    for hours in (1, 2):
        tick = T0 + timedelta(hours=hours)
        expected = moved_organizations(fifty, tick) | (set(changed) if hours == 1 else set())
        data = evaluate(hourly, instance, database_url, tick)
        refreshed = [o for request in data.run_requests or [] for o in organizations_of(request, instance)]
        assert sorted(refreshed) == sorted(expected)
        assert_matches_oracle(fifty, tick)

    # Twenty days pass with no source change: time alone moves segments.
    later = T0 + timedelta(days=20)
    expected = moved_organizations(fifty, later)
    assert expected
    data = evaluate(hourly, instance, database_url, later)
    assert sorted(o for r in data.run_requests for o in organizations_of(r, instance)) == sorted(expected)
    assert_matches_oracle(fifty, later)


def test_runs_are_balanced_by_customers(fifty, database_url, instance):
    hourly, nightly = schedules(customers_per_run=60)
    sizes = dict(fifty.execute("SELECT o.id::text, count(c.*) FROM organizations AS o"
                               " LEFT JOIN square_existing_clients AS c ON c.organization_id = o.id GROUP BY 1"))
    data = evaluate(nightly, instance, database_url, T0)
    for request in data.run_requests:
        organizations = organizations_of(request, instance)
        assert len(organizations) == 1 or sum(max(1, sizes[o]) for o in organizations) <= 60
    assert any(sizes[organizations_of(r, instance)[0]] > 60 for r in data.run_requests
               if len(organizations_of(r, instance)) == 1)


def quiet_database(conn, instance, organizations=3):
    """Organizations whose customers are all LOST (last visit two years back): time never
    moves them, so once refreshed, nothing is due until their source rows change."""
    ids = [str(uuid.uuid4()) for _ in range(organizations)]
    for organization_id in ids:
        conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'quiet')", (organization_id,))
        for customer in range(5):
            conn.execute("INSERT INTO square_existing_clients (organization_id, square_customer_id, created_at,"
                         " updated_at) VALUES (%s, %s, now(), now())", (organization_id, f"c{customer}"))
            conn.execute("INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status,"
                         " start_at, created_at, updated_at) VALUES (%s, %s, %s, 'L1', 'ACCEPTED', %s, now(), now())",
                         (organization_id, f"b{customer}", f"c{customer}", T0 - timedelta(days=730)))
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, ids)


def freshness_failures(instance) -> int:
    records = instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.FRESHNESS_STATE_CHANGE, asset_key=KEY))
    return sum(r.event_log_entry.dagster_event.event_specific_data.new_state == FreshnessState.FAIL for r in records)


def test_quiet_hours_launch_no_run_and_missed_hours_raise_one_freshness_alarm(conn, database_url, instance,
                                                                                tmp_path):
    quiet_database(conn, instance)
    hourly, _ = schedules()
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    # A code location of its own (the daemon binds what it loads to this test's instance).
    location = tmp_path / "code_location.py"
    location.write_text("from customer_analytics_pipeline.defs.factory import build_definitions\n"
                        "from customer_analytics_pipeline.settings import Settings\n"
                        "defs = build_definitions(Settings())\n")
    origin = LoadableTargetOrigin(python_file=str(location), attribute="defs", working_directory=str(tmp_path))
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))) as wpc:
        daemon = FreshnessDaemon()
        moment = start
        while moment <= start + timedelta(hours=7):
            # The schedule runs at 10:00 (every organization is new), 11:00 and 12:00, then stops.
            if moment.minute == 0 and moment <= start + timedelta(hours=2):
                with freeze_time(moment):
                    data = evaluate(hourly, instance, database_url, moment)
                assert bool(data.run_requests) == (moment == start)
                if moment > start:
                    assert "3 verified unchanged" in data.skip_message
            with freeze_time(moment + timedelta(seconds=30)):
                list(daemon.run_iteration(wpc))
            if moment < start + timedelta(hours=4):
                assert freshness_failures(instance) == 0, f"alarm at {moment} while ticks were on time"
            moment += timedelta(minutes=10)
    assert freshness_failures(instance) == 1
    verified = conn.execute("SELECT count(*) FROM customer_analytics_refresh_state"
                            " WHERE verified_as_of = %s", (start + timedelta(hours=2),)).fetchone()[0]
    assert verified == 3


def test_stopped_ticks_raise_a_freshness_error_in_a_run_log_once_and_recover(conn, database_url, instance):
    quiet_database(conn, instance)
    hourly, _ = schedules()
    defs = build_definitions(Settings(), PostgresResource(database_url=database_url))
    sensor = defs.get_sensor_def("customer_analytics_freshness_sensor")
    resources = {"database": PostgresResource(database_url=database_url)}

    def evaluate_sensor(cursor):
        context = build_sensor_context(instance=instance, resources=resources, cursor=cursor)
        return sensor.evaluate_tick(context)

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    evaluate(hourly, instance, database_url, hour)
    assert evaluate_sensor(None).skip_message  # all current: no run
    # Three hours without a tick.
    conn.execute("UPDATE customer_analytics_refresh_state SET last_refreshed_at = now() - interval '3 hours',"
                 " verified_at = NULL")
    stale = evaluate_sensor("current")
    (request,) = stale.run_requests
    assert stale.cursor == "stale" and evaluate_sensor("stale").skip_message  # one run per flip
    result = defs.resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance, tags=request.tags,
                                                                     raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert evaluation.metadata["stale_organizations"].value == 3
    names = dict(conn.execute("SELECT id::text, name FROM organizations"))
    sample = evaluation.metadata["stale_sample"].value.records
    assert {(record.data["organization_id"], record.data["organization"]) for record in sample} == set(names.items())
    errors = [record.user_message for record in instance.all_logs(result.run_id) if record.level >= logging.ERROR]
    assert any("3 organization(s) neither refreshed nor verified" in line for line in errors), errors
    # The hourly tick comes back: every organization verified, the check passes again.
    evaluate(hourly, instance, database_url, hour + timedelta(hours=1))
    current = evaluate_sensor("stale")
    assert current.cursor == "current" and len(current.run_requests) == 1
    passed = defs.resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
    assert passed.get_asset_check_evaluations()[0].passed


def test_a_failed_run_of_listed_organizations_names_only_those(fifty, database_url, instance):
    """A run of scattered organizations (the hourly tick's) that fails on bad data: the
    application_logs row names the listed organizations, not the partitions between them."""
    keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    first, between, last = keys[0], keys[1], keys[2]
    conn = fifty
    conn.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at, updated_at)"
        " SELECT organization_id, 'huge-' || n, square_customer_id, 'COMPLETED', 9223372036854775807, now(), now()"
        " FROM (SELECT * FROM square_existing_clients WHERE organization_id = %s LIMIT 1) AS c,"
        " generate_series(1, 2) AS n",
        (first,))
    tags = {PARTITION_TAG: first}
    run_config = {"ops": {"customer_analytics": {"config": {"mode": "full", "organizations": [first, last]}}}}

    result = refresh_job(database_url).execute_in_process(instance=instance, run_config=run_config, tags=tags,
                                                          raise_on_error=False)

    assert not result.success
    (payload,) = [row[0] for row in conn.execute(
        "SELECT payload FROM application_logs WHERE payload->>'status' = 'failure'")]
    assert sorted(payload["organizations"]) == sorted([first, last])
    assert payload["organizations_committed"] == [last]
    assert between not in str(payload)
    run = instance.get_run_by_id(result.run_id)
    assert sorted(organizations_of_run(instance, run.tags, run.run_config)) == sorted([first, last])
