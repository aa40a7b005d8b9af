"""Partition sync, the schedules' batched run requests, a scheduled batch run for real,
overlapping refreshes, run history in application_logs, freshness and instance config."""

import threading
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterRunStatus,
    SensorResult,
    SkipReason,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test

from customer_analytics_pipeline.definitions import defs
from customer_analytics_pipeline.defs.factory import build_definitions
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    partition_range,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.defs.schedules import build_schedules
from customer_analytics_pipeline.defs.sensors import organization_partitions_sensor, refresh_failure_sensor
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.refresh import RefreshParameters, refresh_customer_analytics
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME, record_success
from customer_analytics_pipeline.warehouse.views import VIEW_NAME
from customer_analytics_pipeline_tests.helpers import (
    anchor,
    largest_organization,
    organization_ids,
    refresh,
    refresh_job,
)
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
hourly_recent_refresh, nightly_full_refresh = build_schedules(Settings())



def test_sensors_on_a_database_not_set_up_yet_skip_saying_what_to_run(scratch_database_url, instance):
    """`dg dev` before `demo`: an empty database. Each sensor that reads it skips with one
    line naming the missing table and the command to run, instead of a traceback a minute."""
    resources = {"database": PostgresResource(database_url=scratch_database_url)}
    freshness = build_definitions(Settings(), resources["database"]).get_sensor_def(
        "customer_analytics_freshness_sensor")
    for sensor_def in (organization_partitions_sensor, freshness):
        result = sensor_def.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        assert not result.run_requests and result.skip_message, sensor_def.name
        assert 'relation "organizations" does not exist' in result.skip_message
        assert "run `customer-analytics migrate`" in result.skip_message and "demo" in result.skip_message


def evaluate_partition_sensor(instance, database_url):
    """One sensor tick, with its partition requests applied as the daemon would."""
    database = PostgresResource(database_url=database_url)
    context = build_sensor_context(instance=instance, resources={"database": database})
    result = organization_partitions_sensor(context)
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests:
            if type(request).__name__ == "AddDynamicPartitionsRequest":
                instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
            else:
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result


def insert_organizations(conn, count):
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with conn.cursor().copy("COPY organizations (id, name) FROM STDIN") as copy:
        for index, organization_id in enumerate(ids):
            copy.write_row((organization_id, f"org {index}"))
    return ids


def test_sensor_keeps_partitions_equal_to_organizations(conn, database_url, instance):
    first = insert_organizations(conn, 3000)  # thousands in one tick
    result = evaluate_partition_sensor(instance, database_url)
    assert isinstance(result, SensorResult)
    assert sorted(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)) == sorted(first)

    assert isinstance(evaluate_partition_sensor(instance, database_url), SkipReason)  # nothing changed

    gone = first[:5]
    conn.execute("DELETE FROM organizations WHERE id = ANY(%s::uuid[])", (gone,))
    added = insert_organizations(conn, 2)
    result = evaluate_partition_sensor(instance, database_url)
    kinds = {type(request).__name__: request.partition_keys for request in result.dynamic_partitions_requests}
    assert sorted(kinds["AddDynamicPartitionsRequest"]) == sorted(added)
    assert sorted(kinds["DeleteDynamicPartitionsRequest"]) == sorted(gone)
    assert sorted(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)) == sorted(
        organization_ids(conn)
    )


def test_schedules_crons():
    assert hourly_recent_refresh.cron_schedule == "0 * * * *"
    assert nightly_full_refresh.cron_schedule == "0 3 * * *"
    assert {s.name for s in defs.schedules} == {"hourly_recent_refresh", "nightly_full_refresh"}


def test_one_scheduled_batch_runs_for_real(generated, database_url, instance):
    evaluate_partition_sensor(instance, database_url)
    tick = anchor(generated)
    small_runs, = [s for s in build_schedules(Settings(customers_per_run=150)) if s.name == "nightly_full_refresh"]
    # Closed at once: the context enters an instance of its own, and one left to the garbage
    # collector resets Dagster's current defs-state storage out of order (a later test's
    # definitions then resolve a dead instance).
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                resources={"database": PostgresResource(database_url=database_url)}) as context:
        request = small_runs.evaluate_tick(context).run_requests[0]
    batch = partition_range(instance, request.tags[PARTITION_RANGE_START_TAG], request.tags[PARTITION_RANGE_END_TAG])
    job = refresh_job(database_url)

    result = job.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags)

    assert result.success
    refreshed = dict(generated.execute(
        "SELECT organization_id::text, as_of FROM customer_analytics_refresh_state").fetchall())
    assert set(refreshed) == set(batch) and set(refreshed.values()) == {tick}
    assert generated.execute("SELECT to_regclass(%s)", (VIEW_NAME,)).fetchone()[0] is not None
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 8 and all(e.passed for e in evaluations)
    (payload,) = [row[0] for row in generated.execute(
        "SELECT payload FROM application_logs WHERE payload->>'cron_name' = %s", (CRON_NAME,))]
    assert payload["status"] == "success" and payload["mode"] == "full"
    assert sorted(payload["organizations"]) == sorted(batch)
    assert payload["dagster_run_id"] == result.run_id and payload["rows_changed"] > 0
    # Only the batch's organizations were touched.
    (others,) = generated.execute(
        "SELECT count(*) FROM customer_analytics WHERE NOT organization_id::text = ANY(%s)", (batch,)).fetchone()
    assert others == 0


def test_two_refreshes_of_one_organization_at_once_both_succeed(generated, database_url):
    as_of = anchor(generated)
    org = largest_organization(generated)
    start = threading.Barrier(2)
    results, errors = [], []

    def run(mode):
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                start.wait()
                results.append(refresh_customer_analytics(conn, [org], RefreshParameters(mode=mode, as_of=as_of)))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(mode,)) for mode in ("full", "recent")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(results) == 2
    (clients,) = generated.execute(
        "SELECT count(*) FROM square_existing_clients WHERE organization_id = %s", (org,)).fetchone()
    # They took turns: whichever ran first inserted every row, the other changed nothing.
    assert sorted(r.total("rows_inserted") for r in results) == [0, clients]
    assert sum(r.total("rows_updated") for r in results) == 0
    expected = expected_customer_analytics(load_source_frames(generated), as_of)
    assert_frames_equal_cellwise(read_customer_analytics(generated, [org]), expected[expected.organization_id == org])


def run_failure_sensor_tick(instance, database_url, run_id, event):
    """refresh_failure_sensor evaluated for one run, as the daemon would."""
    context = build_run_status_sensor_context(
        sensor_name=refresh_failure_sensor.name, dagster_event=event, dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"database": PostgresResource(database_url=database_url)},
    ).for_run_failure()
    refresh_failure_sensor(context)


def test_failed_runs_are_recorded_once_in_application_logs(generated, database_url, instance):
    evaluate_partition_sensor(instance, database_url)
    keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    job = refresh_job(database_url)
    result = job.execute_in_process(
        instance=instance,
        run_config={"ops": {"customer_analytics": {"config": {"as_of": "not a date"}}}},
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=False,
    )
    assert not result.success

    def failure_rows():
        return [row[0] for row in generated.execute(
            "SELECT payload FROM application_logs WHERE payload->>'cron_name' = %s AND payload->>'status' = 'failure'",
            (CRON_NAME,))]

    (payload,) = failure_rows()  # written by the asset itself
    assert "as_of must be an ISO 8601 timestamp" in payload["error"] and payload["dagster_run_id"] == result.run_id

    # A run that died before it could write (a crash): the run-failure sensor records it, once.
    generated.execute("DELETE FROM application_logs")
    generated.execute("DELETE FROM customer_analytics_recorded_runs")
    failure_event = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    for _ in range(2):
        run_failure_sensor_tick(instance, database_url, result.run_id, failure_event)
    (payload,) = failure_rows()
    assert payload["dagster_run_id"] == result.run_id and sorted(payload["organizations"]) == sorted(keys)
    assert generated.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0


def test_freshness_policy_flags_after_two_hours_by_default():
    policy = defs.resolve_assets_def("customer_analytics").specs_by_key[AssetKey("customer_analytics")].freshness_policy
    assert policy.fail_window.to_timedelta() == timedelta(hours=2)


def test_instance_config_keeps_dagster_storage_in_postgres_with_a_pool():
    config = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert config["freshness"]["enabled"] is True
    asset = defs.resolve_assets_def("customer_analytics")
    assert asset.op.pool == "customer_analytics_database"
    assert asset.keys == {AssetKey("customer_analytics"), AssetKey("customer_segment_changes")}


def test_a_batch_keeps_one_application_logs_row_across_retries_and_the_failure_sensor(refreshed_batch):
    """Once a batch's refresh committed its row, a retried attempt adds no second row, and
    neither does the run-failure sensor (say, when a blocking check failed the run later)."""
    conn, database_url, instance, result = refreshed_batch
    rows = lambda: conn.execute(  # noqa: E731
        "SELECT payload->>'status' FROM application_logs WHERE payload->>'dagster_run_id' = %s", (result.run_id,)
    ).fetchall()
    assert rows() == [("success",)]
    with conn.transaction():
        record_success(conn, refresh(conn, "full", anchor(conn)), result.run_id)  # as a retried attempt would
    run_event = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_SUCCESS)
    run_failure_sensor_tick(instance, database_url, result.run_id, run_event)
    assert rows() == [("success",)]


@pytest.fixture
def refreshed_batch(generated, database_url, instance):
    evaluate_partition_sensor(instance, database_url)
    keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    job = refresh_job(database_url)
    result = job.execute_in_process(
        instance=instance, tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        run_config={"ops": {"customer_analytics": {"config": {"as_of": anchor(generated).isoformat()}}}},
    )
    return generated, database_url, instance, result


@pytest.mark.parametrize("tags", [
    pytest.param({PARTITION_RANGE_START_TAG: "00000000-0000-4000-8000-0000000000f1",
                  PARTITION_RANGE_END_TAG: "00000000-0000-4000-8000-0000000000f2"}, id="unknown partitions"),
    pytest.param({}, id="no partition"),
])
def test_a_failed_run_of_no_organization_writes_no_row(generated, database_url, instance, tags):
    """A run rejected for partition keys that do not exist (run monitoring fails it
    after its start timeout) resolves to no organization: the failure sensor writes no
    row about zero organizations."""
    evaluate_partition_sensor(instance, database_url)
    run = create_run_for_test(instance, job_name=REFRESH_JOB_NAME, tags=tags, status=DagsterRunStatus.STARTING)
    instance.report_run_failed(run, "Run timed out due to taking longer than 300 seconds to start.")
    (record,) = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_FAILURE).records
    run_failure_sensor_tick(instance, database_url, run.run_id, record.event_log_entry.dagster_event)
    assert generated.execute("SELECT count(*) FROM application_logs").fetchone()[0] == 0
