"""Per-partition asset events written in batches, for the two kinds of runs that refresh
many organizations at once.

Dagster writes the per-partition events of a range run's output in batches
(``DAGSTER_EVENT_BATCH_SIZE``), but an ``AssetMaterialization`` a step yields itself one
at a time: 5-6 ms each through PgBouncer, against well under 1 ms batched
(docs/performance.md). Two adapters keep every organization's event its own without
that cost:

- ``set_partition_metadata``: each partition of a range run's output gets its own
  metadata. The public way, ``context.add_asset_metadata(..., partition_key=...)``, reads
  every partition key of the run's range on each call in Dagster 1.13; this hands the
  metadata to the step's accumulator in one pass, the store the public call fills.
- ``batched_materializations``: a run of listed organizations (scattered over the
  partitions, so no range) writes one materialization per organization as one batch,
  the way Dagster writes an output's events.

Both rely on Dagster's private step context and event constructors:
``test_partition_events.py`` fails when either changes.
"""

from collections.abc import Iterable, Iterator, Mapping

from dagster import AssetExecutionContext, AssetKey, AssetMaterialization, DagsterEvent

# Private: Dagster 1.13 exports no way to batch a step's own events or to set a
# partition's output metadata in one pass.
from dagster._core.events import DagsterEventBatchMetadata, generate_event_batch_id
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator


def set_partition_metadata(
    context: AssetExecutionContext, asset_key: AssetKey, metadata_by_partition: Mapping[str, Mapping]
) -> None:
    """Adds ``metadata_by_partition[key]`` to the event of partition ``key`` of the output
    of ``asset_key`` (every key must be a partition of the run: the caller's own list)."""
    step = context.op_execution_context._step_execution_context
    current = step._metadata_accumulator.per_output_metadata
    added = {}
    for partition_key, metadata in metadata_by_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=partition_key)
        added[handle] = {**current.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata={**current, **added})


def batched_materializations(
    context: AssetExecutionContext, materializations: Iterable[AssetMaterialization]
) -> Iterator[DagsterEvent]:
    """Logs ``materializations`` as one batch of events (stored when the last is logged,
    or every ``DAGSTER_EVENT_BATCH_SIZE``; one at a time when batching is off) and yields
    them for the step to pass on, as it does the events it makes of an output.

    Every event is logged before the first is yielded, so a consumer that stops early
    cannot leave part of the batch unwritten."""
    step = context.op_execution_context._step_execution_context
    pending = list(materializations)
    batch_id = generate_event_batch_id()
    events = [
        DagsterEvent.asset_materialization(step, materialization,
                                           DagsterEventBatchMetadata(batch_id, index == len(pending) - 1))
        for index, materialization in enumerate(pending)
    ]
    yield from events
