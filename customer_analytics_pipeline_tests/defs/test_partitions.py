"""Partition ranges resolved through Dagster's partition API on the instance's
organization partitions."""

import pytest
from dagster import DagsterInstance

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
    organizations_of_run,
    partition_range,
)

KEYS = ["b-org", "a-org", "d-org", "c-org"]  # partition order is the order they were added


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, KEYS)
        yield instance


def test_a_range_follows_partition_order_not_key_order(instance):
    assert partition_range(instance, "a-org", "c-org") == ["a-org", "d-org", "c-org"]
    assert partition_range(instance, "d-org", "d-org") == ["d-org"]
    assert partition_range(instance, "c-org", "b-org") == []  # start after end: nothing


@pytest.mark.parametrize("start, end", [("a-org", "gone-org"), ("gone-org", "c-org")])
def test_a_range_naming_an_unknown_partition_is_an_error(instance, start, end):
    with pytest.raises(ValueError, match=f"partition range {start}..{end} names an unknown organization partition"):
        partition_range(instance, start, end)


def test_organizations_of_a_run(instance):
    range_tags = {PARTITION_RANGE_START_TAG: "b-org", PARTITION_RANGE_END_TAG: "a-org"}
    assert organizations_of_run(instance, range_tags) == ["b-org", "a-org"]
    assert organizations_of_run(instance, {PARTITION_TAG: "d-org"}) == ["d-org"]
    assert organizations_of_run(instance, {}) is None
    listed = {"ops": {"customer_analytics": {"config": {"organizations": ["c-org"]}}}}
    assert organizations_of_run(instance, range_tags, listed) == ["c-org"]
