"""The runtime role needs only the documented grants (docs/operations.md): refresh, checks and view run through
Dagster as such a role, and a pending migration is reported, not attempted blindly."""

from dagster import DagsterEventType, instance_for_test

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.warehouse.migrations import MIGRATIONS_TABLE
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, refresh_job


def run_job_as(database_url: str, keys: list[str], as_of: str):
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
        job = refresh_job(database_url)
        return job.execute_in_process(
            instance=instance,
            run_config={"ops": {"customer_analytics": {"config": {"as_of": as_of}}}},
            tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
            raise_on_error=False,
        )


def test_refresh_checks_and_view_run_as_the_runtime_role(generated, database_url, make_role):
    as_runtime_role = make_role(database_url)
    keys = organization_ids(generated)
    result = run_job_as(as_runtime_role, keys, anchor(generated).isoformat())

    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 8 and all(e.passed for e in evaluations)
    (clients,) = generated.execute("SELECT count(*) FROM square_existing_clients").fetchone()
    assert generated.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == clients
    assert generated.execute(
        "SELECT payload->>'status' FROM application_logs WHERE payload->>'cron_name' = %s", (CRON_NAME,)
    ).fetchall() == [("success",)]


def test_a_pending_migration_says_to_run_migrate(generated, database_url, make_role):
    as_runtime_role = make_role(database_url)
    generated.execute(f"DELETE FROM {MIGRATIONS_TABLE} WHERE version = (SELECT max(version) FROM {MIGRATIONS_TABLE})")
    result = run_job_as(as_runtime_role, organization_ids(generated), anchor(generated).isoformat())

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    description = failure.event_specific_data.user_failure_data.description
    assert "run `customer-analytics migrate`" in description and "permission denied" in description
    assert not any(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    assert generated.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0
