"""The customer_analytics asset through Dagster: range runs, config, metadata, failures."""

from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline_tests.helpers import customer_analytics, organization_ids
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)


def run_asset(database_url, keys, config=None, raise_on_error=True):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    return materialize(
        [customer_analytics],
        instance=instance,
        resources={"database": PostgresResource(database_url=database_url)},
        run_config={"ops": {"customer_analytics": {"config": config or {}}}},
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=raise_on_error,
    )


def test_one_run_refreshes_every_partition_of_its_range_in_one_transaction(generated, database_url):
    keys = organization_ids(generated)
    result = run_asset(database_url, keys, {"mode": "full", "as_of": "2026-06-01T12:00:00"})

    assert result.success
    metadata = result.asset_materializations_for_node("customer_analytics")[0].metadata
    (clients,) = generated.execute("SELECT count(*) FROM square_existing_clients").fetchone()
    assert metadata["organizations"].value == len(keys)
    assert metadata["dagster/row_count"].value == clients == metadata["rows_inserted"].value
    assert metadata["rows_updated"].value == metadata["rows_deleted"].value == metadata["rows_unchanged"].value == 0
    assert sum(metadata["segment_counts"].value.values()) == clients
    assert "booking_notes" in [c.name for c in metadata["dagster/column_schema"].schema.columns]
    # One pass: the whole batch committed in a single transaction (one now()).
    refreshed = generated.execute("SELECT DISTINCT last_refreshed_at FROM customer_analytics_refresh_state").fetchall()
    assert len(refreshed) == 1
    # An as_of without an offset is UTC.
    as_of = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert_frames_equal_cellwise(
        read_customer_analytics(generated), expected_customer_analytics(load_source_frames(generated), as_of)
    )


def test_rerun_reports_rows_unchanged(generated, database_url):
    keys = organization_ids(generated)
    run_asset(database_url, keys, {"as_of": "2026-06-01T12:00:00Z"})
    result = run_asset(database_url, keys, {"mode": "recent", "as_of": "2026-06-01T12:00:00Z"})
    metadata = result.asset_materializations_for_node("customer_analytics")[0].metadata
    assert metadata["batch_rows_unchanged"].value == metadata["batch_rows"].value > 0
    assert metadata["batch_rows_inserted"].value == metadata["batch_rows_updated"].value == 0


@pytest.mark.parametrize(
    "config, message",
    [
        ({"as_of": "yesterday"}, "as_of must be an ISO 8601 timestamp"),
        ({"lookback_days": -5}, "lookback_days must be a whole number"),
    ],
)
def test_bad_config_fails_the_run_with_a_plain_message(generated, database_url, config, message):
    result = run_asset(database_url, organization_ids(generated), config, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert message in str(failure.event_specific_data.error)
    assert generated.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0


def test_unreachable_database_is_retried_then_fails(database_url):
    """A lost database is a transient error: the RetryPolicy, not a silent pass, handles it."""
    result = run_asset(
        "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1",
        ["00000000-0000-4000-8000-000000000001"],
        raise_on_error=False,
    )
    assert not result.success
    assert any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
