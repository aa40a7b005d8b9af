"""The per-partition event adapters (defs/partition_events.py) lean on Dagster's private
step context and event constructors: these tests fail as soon as Dagster stops carrying
what they set into each partition's materialization, or stops writing a listed run's
materializations as one batch."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    DynamicPartitionsDefinition,
    MaterializeResult,
    instance_for_test,
    materialize,
    multi_asset,
)

from customer_analytics_pipeline.defs.partition_events import batched_materializations, set_partition_metadata
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


@multi_asset(specs=[AssetSpec(KEY, skippable=True)], partitions_def=PARTITIONS)
def listed(context: AssetExecutionContext):
    yield from batched_materializations(
        context, (AssetMaterialization(KEY, partition=key, metadata={"rows": index})
                  for index, key in enumerate(["a", "c", "d"])))


def test_a_listed_run_writes_each_partitions_materialization_in_one_batch(monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(PARTITIONS.name, ["a", "b", "c", "d"])
        storage = instance.event_log_storage
        batches = []
        store_event_batch = storage.store_event_batch
        monkeypatch.setattr(storage, "store_event_batch",
                            lambda events: (batches.append(len(events)), store_event_batch(events))[1])
        result = materialize([listed], instance=instance, partition_key="a")
        stored = instance.fetch_materializations(KEY, limit=10).records

    assert {e.partition: e.metadata["rows"].value for e in result.asset_materializations_for_node("listed")} == {
        "a": 0, "c": 1, "d": 2}
    assert sorted(r.partition_key for r in stored) == ["a", "c", "d"]
    assert 3 in batches
