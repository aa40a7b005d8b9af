"""The per-partition metadata adapter (defs/partition_metadata.py) leans on Dagster's
private step context: this test fails as soon as Dagster stops carrying what it sets
into each partition's materialization of a range run's output."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    DynamicPartitionsDefinition,
    MaterializeResult,
    instance_for_test,
    materialize,
    multi_asset,
)

from customer_analytics_pipeline.defs.partition_metadata import set_partition_metadata
from customer_analytics_pipeline.defs.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

PARTITIONS = DynamicPartitionsDefinition(name="adapter_test")
KEY = AssetKey("counted")


@multi_asset(specs=[AssetSpec(KEY)], partitions_def=PARTITIONS, backfill_policy=BackfillPolicy.single_run())
def counted(context: AssetExecutionContext):
    set_partition_metadata(context, KEY, {key: {"rows": index} for index, key in enumerate(context.partition_keys)})
    set_partition_metadata(context, KEY, {context.partition_keys[-1]: {"summary": "last"}})
    yield MaterializeResult(asset_key=KEY, metadata={"batch_rows": 6})


def test_each_partition_of_a_range_output_carries_its_own_metadata():
    keys = ["a", "b", "c", "d"]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(PARTITIONS.name, keys)
        result = materialize([counted], instance=instance,
                             tags={PARTITION_RANGE_START_TAG: "a", PARTITION_RANGE_END_TAG: "d"})
        events = {e.partition: e.metadata for e in result.asset_materializations_for_node("counted")}

    assert sorted(events) == keys
    assert {key: metadata["rows"].value for key, metadata in events.items()} == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert all(metadata["batch_rows"].value == 6 for metadata in events.values())
    assert [key for key, metadata in events.items() if "summary" in metadata] == ["d"]
    assert events["d"]["rows"].value == 3  # a second call adds to a partition's metadata
