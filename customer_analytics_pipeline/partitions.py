"""The organization partitions: one dynamic partition key per organizations.id (lowercase text)."""

from dagster import DynamicPartitionsDefinition

ORGANIZATIONS_PARTITION_NAME = "organizations"

organizations_partitions = DynamicPartitionsDefinition(name=ORGANIZATIONS_PARTITION_NAME)
