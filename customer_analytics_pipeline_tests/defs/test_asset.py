"""The customer_analytics asset through Dagster: range runs, config, metadata, failures."""

from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, DagsterInvalidConfigError, materialize

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline_tests.helpers import customer_analytics, organization_ids, refresh_job
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)


def run_asset(database_url, keys, config=None, raise_on_error=True, partition_key=None):
    """A range run over ``keys`` (or a run of the one partition ``partition_key``)."""
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    return materialize(
        [customer_analytics],
        instance=instance,
        resources={"database": PostgresResource(database_url=database_url)},
        run_config={"ops": {"customer_analytics": {"config": config or {}}}},
        partition_key=partition_key,
        tags={} if partition_key else {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=raise_on_error,
    )


def materializations(result, asset="customer_analytics") -> dict:
    """Each partition's materialization metadata of ``asset`` in the run."""
    events = [m for m in result.asset_materializations_for_node("customer_analytics") if m.asset_key.path[-1] == asset]
    by_partition = {m.partition: m.metadata for m in events}
    assert len(by_partition) == len(events), "one event per partition"
    return by_partition


def clients_by_organization(conn) -> dict:
    return dict(conn.execute("SELECT organization_id::text, count(*) FROM square_existing_clients GROUP BY 1"))


# The batch's segment mix and the column schema ride on the run's last partition only.
BATCH_SUMMARY = {"batch_segment_counts", "dagster/column_schema"}


def test_one_run_refreshes_every_partition_of_its_range_in_one_transaction(generated, database_url):
    keys = organization_ids(generated)
    result = run_asset(database_url, keys, {"mode": "full", "as_of": "2026-06-01T12:00:00"})

    assert result.success
    events = materializations(result)
    assert sorted(events) == keys
    clients = clients_by_organization(generated)
    names = dict(generated.execute("SELECT id::text, name FROM organizations"))
    total = sum(clients.values())
    for key, metadata in events.items():
        # Each partition has its own counts and its organization's name ...
        assert metadata["dagster/row_count"].value == clients.get(key, 0) == metadata["rows_inserted"].value, key
        assert metadata["organization_name"].value == names[key]
        assert metadata["rows_updated"].value == metadata["rows_deleted"].value == 0
        assert metadata["rows_unchanged"].value == 0
        # ... and the batch's totals, labelled as such.
        assert metadata["batch_mode"].value == "full"
        assert metadata["batch_organizations"].value == len(keys)
        assert metadata["batch_rows"].value == metadata["batch_rows_inserted"].value == total
        assert metadata["batch_rows_recomputed"].value == total
        assert metadata["batch_rows_updated"].value == metadata["batch_rows_deleted"].value == 0
        assert metadata["batch_as_of"].value == "2026-06-01T12:00:00+00:00"
        assert metadata["batch_duration_seconds"].value >= 0
        assert "per_organization" not in metadata
    # The segment mix and the column schema ride on the run's last partition only.
    assert [key for key, metadata in events.items() if BATCH_SUMMARY & set(metadata)] == [keys[-1]]
    last = events[keys[-1]]
    assert sum(last["batch_segment_counts"].value.values()) == total
    assert "booking_notes" in [c.name for c in last["dagster/column_schema"].schema.columns]
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
    events = materializations(result)
    assert sorted(events) == keys
    for metadata in events.values():
        assert metadata["rows_unchanged"].value == metadata["dagster/row_count"].value
        assert metadata["rows_inserted"].value == metadata["rows_updated"].value == 0
        assert metadata["batch_rows_recomputed"].value == 0 and metadata["batch_mode"].value == "recent"
    assert sum(metadata["rows_unchanged"].value for metadata in events.values()) > 0


def test_a_run_of_named_organizations_reports_only_those(generated, database_url):
    """Run config ``organizations`` (the hourly tick's changed ones, scattered over the
    partitions; the run is tagged with the first one's partition): one event per named
    organization, each with its own counts; the partitions between them get none."""
    keys = organization_ids(generated)
    named = [keys[0], keys[-1]]
    result = run_asset(database_url, keys, {"as_of": "2026-06-01T12:00:00Z", "organizations": named},
                       partition_key=keys[0])

    assert result.success
    events = materializations(result)
    assert sorted(events) == named
    assert sorted(materializations(result, "customer_segment_changes")) == named
    clients = clients_by_organization(generated)
    names = dict(generated.execute("SELECT id::text, name FROM organizations"))
    for key, metadata in events.items():
        assert metadata["dagster/row_count"].value == clients.get(key, 0) == metadata["rows_inserted"].value
        assert metadata["organization_name"].value == names[key]
        assert metadata["batch_organizations"].value == 2
    assert [key for key, metadata in events.items() if BATCH_SUMMARY & set(metadata)] == [keys[-1]]
    refreshed = {row[0] for row in generated.execute("SELECT DISTINCT organization_id::text FROM customer_analytics")}
    assert refreshed == {key for key in named if clients.get(key)}
    # The checks evaluated the named organizations only.
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == 8 and all(e.passed for e in evaluations.values())
    assert {e.metadata["organizations_checked"].value for e in evaluations.values()} == {2}


@pytest.mark.parametrize("organizations, partition, message", [
    (lambda keys: [keys[0], "00000000-0000-4000-8000-00000000dead"], lambda keys: {"partition_key": keys[0]},
     "not an organization partition: 00000000-0000-4000-8000-00000000dead"),
    (lambda keys: [keys[0]], lambda keys: {}, "is not listed"),  # a range run naming only part of its range
], ids=["unknown organization", "a partition of the run left out"])
def test_named_organizations_are_validated(generated, database_url, organizations, partition, message):
    keys = organization_ids(generated)
    result = run_asset(database_url, keys, {"organizations": organizations(keys)}, raise_on_error=False,
                       **partition(keys))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "invalid customer_analytics config: organizations" in str(failure.event_specific_data.error)
    assert message in str(failure.event_specific_data.error)
    assert generated.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0


@pytest.mark.parametrize(
    "config, message",
    [
        ({"as_of": "yesterday"}, "as_of must be an ISO 8601 timestamp"),
        ({"new_days": -5}, "new_days must be a whole number"),
    ],
)
def test_bad_config_fails_the_run_with_a_plain_message(generated, database_url, config, message):
    result = run_asset(database_url, organization_ids(generated), config, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert message in str(failure.event_specific_data.error)
    assert generated.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0


def test_lookback_days_is_an_unknown_config_key(generated, database_url):
    """recent has no look-back window any more: a run config still passing one is refused
    before anything runs, naming the key."""
    with pytest.raises(DagsterInvalidConfigError, match='unexpected config entry "lookback_days"'):
        run_asset(database_url, organization_ids(generated), {"mode": "recent", "lookback_days": 90},
                  raise_on_error=False)
    with pytest.raises(DagsterInvalidConfigError, match='unexpected config entry "lookback_days"'):
        refresh_job(database_url).execute_in_process(
            run_config={"ops": {"customer_analytics": {"config": {"lookback_days": 90}}}}, raise_on_error=False,
            instance=DagsterInstance.ephemeral(),
        )
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
