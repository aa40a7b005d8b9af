"""A refresh run looks the organization partitions up a fixed number of times, however
many organizations it covers. Each lookup reads every partition key from Dagster's
storage, so a lookup per organization makes a nightly tick quadratic in the number of
organizations (measured: 19 ms an organization at 2,000 partitions, growing with them)."""

import pytest
from dagster import DagsterInstance

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, refresh_job


@pytest.fixture
def instance() -> DagsterInstance:
    """An in-memory instance (entering none keeps Dagster's context of instances as it was)."""
    return DagsterInstance.ephemeral()


@pytest.fixture
def lookups(instance, monkeypatch) -> list[str]:
    """The partition lookups the test's instance makes, by method name."""
    made: list[str] = []
    for name in ("get_dynamic_partitions", "has_dynamic_partition"):
        original = getattr(instance, name)

        def counted(*args, __original=original, __name=name, **kwargs):
            made.append(__name)
            return __original(*args, **kwargs)

        monkeypatch.setattr(instance, name, counted)
    return made


def lookups_of_run(instance, database_url, keys, config, lookups) -> int:
    before = len(lookups)
    result = refresh_job(database_url).execute_in_process(
        instance=instance,
        run_config={"ops": {"customer_analytics": {"config": config}}},
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=False,
    )
    assert result.success
    return len(lookups) - before


@pytest.mark.parametrize("listed", [False, True], ids=["range run", "run naming its organizations"])
def test_partition_lookups_do_not_grow_with_the_organizations_of_a_run(
    generated, database_url, instance, lookups, listed
):
    keys = organization_ids(generated)
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    as_of = anchor(generated).isoformat()

    def config(organizations):
        return {"mode": "full", "as_of": as_of, **({"organizations": organizations} if listed else {})}

    two = lookups_of_run(instance, database_url, keys[:2], config(keys[:2]), lookups)
    four = lookups_of_run(instance, database_url, keys[:4], config(keys[:4]), lookups)
    assert two > 0, "the run's partition lookups were not counted"
    assert four == two, f"{two} partition lookups for 2 organizations, {four} for 4"
