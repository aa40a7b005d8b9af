"""customer_segment_changes through Dagster: the same run materializes it with the
refresh, its metadata gives the run's movements, and full runs enforce the retention."""

import logging
from datetime import timedelta

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize

from customer_analytics_pipeline.defs.customer_analytics_asset import build_customer_analytics
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids


def materialize_range(database, keys, config, settings=None, instance=None):
    instance = instance or DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    return materialize(
        [build_customer_analytics(settings or Settings())],
        instance=instance,
        resources={"database": database},
        run_config={"ops": {"customer_analytics": {"config": config}}},
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
    )


def segment_changes_events(result) -> dict:
    """Each partition's customer_segment_changes metadata in the run."""
    return {m.partition: m.metadata for m in result.asset_materializations_for_node("customer_analytics")
            if m.asset_key.path == ["customer_segment_changes"]}


# The batch's movements ride on the run's last partition event only.
BATCH_MOVEMENTS = {"batch_movements", "batch_change_rows_written", "batch_customers_into_at_risk",
                   "batch_customers_into_lost", "batch_expired_rows_deleted"}


def run(database_url, keys, config, settings=None):
    result = materialize_range(PostgresResource(database_url=database_url), keys, config, settings)
    assert result.success
    # One materialization per partition of the run; the last carries the batch's movements.
    events = segment_changes_events(result)
    assert sorted(events) == sorted(keys)
    assert [key for key, metadata in events.items() if BATCH_MOVEMENTS & set(metadata)] == [keys[-1]]
    assert {metadata["batch_as_of"].value for metadata in events.values()} == {config["as_of"].replace("Z", "+00:00")}
    return events[keys[-1]]


def movements_of_last_refresh(conn) -> dict:
    rows = conn.execute(
        "SELECT coalesce(from_segment, '(first row)'), to_segment, count(*) FROM customer_segment_changes"
        " WHERE changed_at = (SELECT max(changed_at) FROM customer_segment_changes) GROUP BY 1, 2"
    ).fetchall()
    return {(from_segment, to_segment): customers for from_segment, to_segment, customers in rows}


def test_the_run_materializes_the_change_log_with_its_movements(generated, database_url):
    keys = organization_ids(generated)
    first = run(database_url, keys, {"mode": "full", "as_of": anchor().isoformat()})
    (clients,) = generated.execute("SELECT count(*) FROM square_existing_clients").fetchone()
    assert first["batch_change_rows_written"].value == clients
    assert {r.data["from_segment"] for r in first["batch_movements"].value.records} == {"(first row)"}

    later = run(database_url, keys, {"mode": "recent", "as_of": (anchor() + timedelta(days=120)).isoformat()})
    expected = movements_of_last_refresh(generated)
    records = later["batch_movements"].value.records
    table = {(r.data["from_segment"], r.data["to_segment"]): r.data["customers"] for r in records}
    assert table == expected
    assert later["batch_change_rows_written"].value == sum(expected.values())
    assert later["batch_customers_into_at_risk"].value == sum(
        n for (_, to), n in expected.items() if to == "AT_RISK")
    assert later["batch_customers_into_lost"].value == sum(n for (_, to), n in expected.items() if to == "LOST")
    assert later["batch_customers_into_lost"].value > 0
    assert "batch_expired_rows_deleted" not in later  # only full runs enforce the retention


def test_a_full_run_deletes_change_rows_past_the_history_window(generated, database_url, settings_from_environment):
    keys = organization_ids(generated)
    run(database_url, keys, {"mode": "full", "as_of": anchor().isoformat()})
    generated.execute(
        "INSERT INTO customer_segment_changes (organization_id, square_customer_id, from_segment, to_segment,"
        " as_of, changed_at) SELECT organization_id, square_customer_id, 'ACTIVE', 'AT_RISK', now() - d * interval"
        " '1 day', now() - d * interval '1 day' FROM square_existing_clients, (VALUES (20), (40), (50)) AS v(d)"
    )
    (old,) = generated.execute(
        "SELECT count(*) FROM customer_segment_changes WHERE changed_at < now() - interval '30 days'"
    ).fetchone()
    (recent,) = generated.execute(
        "SELECT count(*) FROM customer_segment_changes WHERE changed_at >= now() - interval '30 days'"
    ).fetchone()

    metadata = run(database_url, keys, {"mode": "full", "as_of": anchor().isoformat()},
                   settings_from_environment({"CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS": "30"}))

    assert metadata["batch_expired_rows_deleted"].value == old > 0
    assert generated.execute("SELECT count(*) FROM customer_segment_changes").fetchone()[0] == recent


def test_the_history_window_is_read_from_the_environment_and_validated(settings_from_environment):
    assert settings_from_environment({}).segment_history_days == 730
    assert settings_from_environment({"CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS": "90"}).segment_history_days == 90
    for bad in ("0", "two years"):
        with pytest.raises(ValueError, match="CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS"):
            settings_from_environment({"CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS": bad})


def test_retention_stopped_by_a_lock_is_a_warning_not_a_retried_refresh(generated, database_url):
    """The refresh has committed when retention runs: a lock wait past lock_timeout there
    leaves the run green with a warning and the old rows for the next full run, instead
    of retrying the whole refresh and ending on "Exceeded max_retries"."""
    keys = organization_ids(generated)
    run(database_url, keys, {"mode": "full", "as_of": anchor().isoformat()})
    generated.execute("UPDATE customer_segment_changes SET changed_at = changed_at - interval '800 days'")
    (old,) = generated.execute("SELECT count(*) FROM customer_segment_changes").fetchone()
    instance = DagsterInstance.ephemeral()
    with psycopg.connect(database_url) as other_session:
        other_session.execute("SELECT 1 FROM customer_segment_changes LIMIT 1 FOR UPDATE")
        result = materialize_range(
            PostgresResource(database_url=database_url, lock_timeout_seconds=1), keys,
            {"mode": "full", "as_of": anchor().isoformat()}, instance=instance,
        )
        other_session.rollback()

    assert result.success
    assert not any(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    warnings = [r.user_message for r in instance.all_logs(result.run_id) if r.level == logging.WARNING]
    assert any("retention stopped, left to the next full run" in w and "lock timeout" in w for w in warnings), warnings
    events = segment_changes_events(result)
    assert sorted(events) == sorted(keys)
    assert not any("batch_expired_rows_deleted" in metadata for metadata in events.values())
    assert events[keys[-1]]["batch_change_rows_written"].value == 0
    assert generated.execute("SELECT count(*) FROM customer_segment_changes").fetchone()[0] == old
    assert generated.execute(
        "SELECT level, payload->>'status' FROM application_logs WHERE payload->>'dagster_run_id' = %s",
        (result.run_id,),
    ).fetchall() == [("info", "success")]
