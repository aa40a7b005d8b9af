"""The organization partitions: one dynamic partition key per organizations.id (lowercase text)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from dagster import (
    DagsterInstance,
    DagsterInvalidInvocationError,
    DynamicPartitionsDefinition,
    PartitionKeyRange,
    partition_loading_context,
)

from customer_analytics_pipeline.warehouse.organizations import organization_keys

ORGANIZATIONS_PARTITION_NAME = "organizations"

# Dagster's run tags for one partition and for a partition-range (single-run backfill) run.
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# The refresh step's op name: its run config sits under ops.<name>.config.
REFRESH_OP_NAME = "customer_analytics"

organizations_partitions = DynamicPartitionsDefinition(name=ORGANIZATIONS_PARTITION_NAME)


@dataclass(frozen=True)
class PartitionChanges:
    """What makes the partitions equal to the organizations table."""

    to_add: list[str]
    to_delete: list[str]

    @property
    def empty(self) -> bool:
        return not self.to_add and not self.to_delete


def partition_changes(existing: Sequence[str], organizations: Sequence[str]) -> PartitionChanges:
    """Keys to add (new organizations) and to delete (organizations gone), order preserved."""
    existing_set, organization_set = set(existing), set(organizations)
    return PartitionChanges(
        to_add=[key for key in organizations if key not in existing_set],
        to_delete=[key for key in existing if key not in organization_set],
    )


def sync_organization_partitions(instance: DagsterInstance, conn: psycopg.Connection) -> PartitionChanges:
    """Makes the instance's organization partitions equal to the organizations table."""
    changes = partition_changes(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME), organization_keys(conn))
    if changes.to_add:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, changes.to_add)
    for key in changes.to_delete:
        instance.delete_dynamic_partition(ORGANIZATIONS_PARTITION_NAME, key)
    return changes


def partition_range(instance: DagsterInstance, start: str, end: str) -> list[str]:
    """The organization partitions from ``start`` to ``end`` inclusive, in partition order
    (a range run's keys), as Dagster resolves the range; ValueError when either end is
    not a partition."""
    with partition_loading_context(dynamic_partitions_store=instance):
        try:
            return list(organizations_partitions.get_partition_keys_in_range(PartitionKeyRange(start, end)))
        except DagsterInvalidInvocationError as error:
            raise ValueError(f"partition range {start}..{end} names an unknown organization partition") from error


def organizations_of_run(
    instance: DagsterInstance, tags: Mapping[str, str], run_config: Mapping | None = None
) -> list[str] | None:
    """The organizations a run refreshes: the list in its refresh config when it has one
    (the hourly tick's scattered organizations), else its partitions, from its tags; None
    for an unpartitioned run."""
    listed = ((run_config or {}).get("ops", {}).get(REFRESH_OP_NAME, {}).get("config") or {}).get("organizations")
    if listed is not None:
        return list(listed)
    if PARTITION_RANGE_START_TAG in tags:
        return partition_range(instance, tags[PARTITION_RANGE_START_TAG], tags[PARTITION_RANGE_END_TAG])
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    return None
