"""What Dagster reports for the organization partitions of failed runs, with one planned
event per partition (Dagster's default) and with one per asset and run
(DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true, README's production setting).

The partition status is read the way the UI's asset page reads it (the instance's
partition status cache) from a PostgreSQL-backed instance, as production stores it."""

import pytest
from dagster import AssetKey, DagsterEventType, instance_for_test
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    organizations_partitions,
)
from customer_analytics_pipeline.dev.dagster_instance import sqlalchemy_url
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_TABLE
from customer_analytics_pipeline.warehouse.views import VIEW_NAME
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, organizations_by_size, refresh_job

SUBSET_VARIABLE = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
BIGINT_MAX = 2**63 - 1


def partition_status(instance) -> dict[str, list[str]]:
    """customer_analytics's partitions by status, as the UI's partition view gets them."""
    value = get_and_update_asset_status_cache_value(
        instance, AssetKey(CUSTOMER_ANALYTICS_TABLE), organizations_partitions
    )
    return {
        "materialized": sorted(value.deserialize_materialized_partition_subsets(organizations_partitions)
                               .get_partition_keys()),
        "failed": sorted(value.deserialize_failed_partition_subsets(organizations_partitions).get_partition_keys()),
    }


def run_range(instance, database_url, keys, as_of: str):
    return refresh_job(database_url).execute_in_process(
        instance=instance,
        run_config={"ops": {"customer_analytics": {"config": {"mode": "full", "as_of": as_of}}}},
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=False,
    )


@pytest.fixture(params=["per partition", "subset"])
def planned_events(request, monkeypatch) -> str:
    if request.param == "subset":
        monkeypatch.setenv(SUBSET_VARIABLE, "true")
    else:
        monkeypatch.delenv(SUBSET_VARIABLE, raising=False)
    return request.param


@pytest.fixture
def postgres_instance(make_scratch_database):
    with instance_for_test(
        overrides={"storage": {"postgres": {"postgres_url": sqlalchemy_url(make_scratch_database())}}}
    ) as instance:
        yield instance


def test_partitions_of_failed_runs(generated, database_url, postgres_instance, planned_events):
    """A run that fails before refreshing anything (a bad as_of), then a good run, then a
    run where bad data fails one organization while the others commit. Per-partition
    planned events mark every partition a failed run did not materialize as failed. With
    the subset, no partition is ever marked failed: a failed run's partitions keep their
    previous status (missing, or materialized by an earlier run). The run is FAILURE
    either way, its failure naming the organizations (the other tests say so)."""
    instance = postgres_instance
    keys = organization_ids(generated)
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    as_of = anchor(generated).isoformat()

    failed = run_range(instance, database_url, keys, "not a time")
    assert not failed.success
    planned = [record for record in instance.get_records_for_run(
        failed.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
        if record.asset_key != AssetKey(VIEW_NAME)]
    after_failed_run = partition_status(instance)

    assert run_range(instance, database_url, keys, as_of).success
    bad_organization = organizations_by_size(generated)[0]
    (customer,) = generated.execute(
        "SELECT square_customer_id FROM square_existing_clients WHERE organization_id = %s LIMIT 1",
        (bad_organization,),
    ).fetchone()
    generated.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at, updated_at)"
        " SELECT %s, 'overflow-' || n, %s, 'COMPLETED', %s, now(), now() FROM generate_series(1, 2) AS n",
        (bad_organization, customer, BIGINT_MAX),
    )
    partial = run_range(instance, database_url, keys, as_of)
    assert not partial.success
    after_partial_failure = partition_status(instance)

    if planned_events == "per partition":
        assert len(planned) == 2 * len(keys)  # both tables, every partition
        assert after_failed_run == {"materialized": [], "failed": sorted(keys)}
        # The UI shows a partition both materialized and failed as failed (its latest attempt).
        assert after_partial_failure == {"materialized": sorted(keys), "failed": [bad_organization]}
    else:
        assert len(planned) == 2  # one per table, with the run's partition subset
        assert after_failed_run == {"materialized": [], "failed": []}
        assert after_partial_failure == {"materialized": sorted(keys), "failed": []}
