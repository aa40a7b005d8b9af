"""The organization partitions: one dynamic partition key per organizations.id (lowercase text)."""

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from dagster import DagsterInstance, DynamicPartitionsDefinition

ORGANIZATIONS_PARTITION_NAME = "organizations"

organizations_partitions = DynamicPartitionsDefinition(name=ORGANIZATIONS_PARTITION_NAME)


@dataclass(frozen=True)
class PartitionChanges:
    """What makes the partitions equal to the organizations table."""

    to_add: list[str]
    to_delete: list[str]

    @property
    def empty(self) -> bool:
        return not self.to_add and not self.to_delete


def organization_keys(conn: psycopg.Connection) -> list[str]:
    """Every organizations.id as lowercase text, in a stable order."""
    return [row[0] for row in conn.execute("SELECT id::text FROM organizations ORDER BY id")]


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
