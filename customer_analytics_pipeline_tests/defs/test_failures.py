"""Unhappy paths as an operator meets them, end to end through Dagster: the run's
headline, how many retries happened, what reached application_logs, and what the table
holds afterwards."""

import threading
import time

import psycopg
from dagster import DagsterEventType, DagsterInstance, materialize

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse.locks import ORGANIZATION_LOCK_NAMESPACE
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME
from customer_analytics_pipeline_tests.helpers import (
    anchor,
    customer_analytics,
    organization_ids,
    organizations_by_size,
)

BIGINT_MAX = 2**63 - 1


def run_refresh(database: PostgresResource, keys: list[str], config: dict | None = None,
                partition_range: tuple[str, str] | None = None):
    """customer_analytics for the partitions ``keys`` (added in this order), over the range
    ``partition_range`` (default: all of them)."""
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    start, end = partition_range or (keys[0], keys[-1])
    return materialize(
        [customer_analytics],
        instance=instance,
        resources={"database": database},
        run_config={"ops": {"customer_analytics": {"config": config or {}}}},
        tags={PARTITION_RANGE_START_TAG: start, PARTITION_RANGE_END_TAG: end},
        raise_on_error=False,
    )


def headline(result) -> str:
    """What the UI shows for the failed step: a Failure's description, else the error."""
    event = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    data = event.event_specific_data
    if data.user_failure_data is not None:
        return data.user_failure_data.description
    return data.error.message


def retries(result) -> int:
    return sum(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


def logged_failure(conn, run_id) -> dict:
    (payload,) = conn.execute(
        "SELECT payload FROM application_logs WHERE payload->>'cron_name' = %s AND payload->>'dagster_run_id' = %s",
        (CRON_NAME, run_id),
    ).fetchone()
    assert payload["status"] == "failure"
    return payload


def assert_fails_at_once(conn, result, message: str) -> dict:
    """Failed with ``message`` in the headline and in application_logs, never retried."""
    assert not result.success
    assert message in headline(result)
    assert "TypeError" not in headline(result)
    assert retries(result) == 0
    payload = logged_failure(conn, result.run_id)
    assert message in payload["error"]
    return payload


def rows(conn) -> int:
    return conn.execute("SELECT count(*) FROM customer_analytics").fetchone()[0]


def test_malformed_partition_key_fails_at_once(generated, database_url):
    result = run_refresh(PostgresResource(database_url=database_url), ["not-a-uuid"])
    assert_fails_at_once(generated, result, "organization partition key 'not-a-uuid' is not a UUID")
    assert rows(generated) == 0


def test_malformed_as_of_fails_at_once(generated, database_url):
    result = run_refresh(PostgresResource(database_url=database_url), organization_ids(generated), {"as_of": "soon"})
    assert_fails_at_once(generated, result, "as_of must be an ISO 8601 timestamp such as")
    assert rows(generated) == 0


def test_missing_privilege_fails_at_once(generated, database_url, make_role):
    as_role = make_role(database_url, without=["payments"])
    result = run_refresh(PostgresResource(database_url=as_role), organization_ids(generated))
    assert_fails_at_once(generated, result, "permission denied for table payments")
    assert "docs/operations.md, Least privilege" in headline(result)
    assert rows(generated) == 0


def test_statement_timeout_fails_at_once(generated, database_url):
    """A statement that runs past statement_timeout (here: one kept waiting for a lock)."""
    keys = organization_ids(generated)
    with psycopg.connect(database_url, autocommit=True) as blocker, blocker.transaction():
        blocker.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ORGANIZATION_LOCK_NAMESPACE, keys[0])
        )
        database = PostgresResource(database_url=database_url, statement_timeout_seconds=1, lock_timeout_seconds=0)
        result = run_refresh(database, keys)
    assert_fails_at_once(generated, result, "canceling statement due to statement timeout")
    assert "CUSTOMER_ANALYTICS_STATEMENT_TIMEOUT_SECONDS" in headline(result)
    assert rows(generated) == 0


def test_overflow_in_one_organization_fails_only_that_organization(generated, database_url):
    """Bad data (payments whose sum overflows bigint) keeps its organization's previous
    rows; the other organizations of the batch commit; the run fails at once naming the
    organization, the customer and the cause."""
    keys = organization_ids(generated)
    bad_organization = organizations_by_size(generated)[0]
    (customer,) = generated.execute(
        "SELECT square_customer_id FROM square_existing_clients WHERE organization_id = %s"
        " ORDER BY square_customer_id LIMIT 1 OFFSET 7",
        (bad_organization,),
    ).fetchone()
    generated.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at, updated_at)"
        " SELECT %s, 'overflow-' || n, %s, 'COMPLETED', %s, now(), now() FROM generate_series(1, 2) AS n",
        (bad_organization, customer, BIGINT_MAX),
    )
    result = run_refresh(PostgresResource(database_url=database_url), keys, {"as_of": anchor(generated).isoformat()})

    payload = assert_fails_at_once(generated, result, "bigint out of range")
    (name,) = generated.execute("SELECT name FROM organizations WHERE id = %s", (bad_organization,)).fetchone()
    assert f"organization {bad_organization} ({name}), customer {customer}: bigint out of range" in headline(result)
    assert sorted(payload["organizations_committed"]) == sorted(k for k in keys if k != bad_organization)
    per_organization = dict(generated.execute(
        "SELECT c.organization_id::text, count(ca.*) FROM square_existing_clients AS c"
        " LEFT JOIN customer_analytics AS ca USING (organization_id, square_customer_id) GROUP BY 1"
    ).fetchall())
    clients = dict(generated.execute(
        "SELECT organization_id::text, count(*) FROM square_existing_clients GROUP BY 1").fetchall())
    assert per_organization[bad_organization] == 0
    assert all(per_organization[k] == clients[k] for k in clients if k != bad_organization)
    committed = {
        (e.asset_key.path[-1], e.partition) for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    }
    # Both tables of each committed organization, nothing of the failed one.
    assert committed == {(table, k) for table in ("customer_analytics", "customer_segment_changes")
                         for k in keys if k != bad_organization}
    logged = dict(generated.execute(
        "SELECT organization_id::text, count(*) FROM customer_segment_changes GROUP BY 1").fetchall())
    assert logged == {k: n for k, n in clients.items() if k != bad_organization}


def test_a_hung_refresh_is_ended_by_the_server_and_the_next_one_proceeds(generated, database_url):
    """A worker idle inside its transaction holds its organization locks only until
    idle_in_transaction_session_timeout ends its session; a refresh waiting behind it
    then proceeds (and finishes well before its own lock_timeout)."""
    keys = organization_ids(generated)
    hung = PostgresResource(database_url=database_url, idle_in_transaction_timeout_seconds=2)
    locked = threading.Event()
    outcome: dict = {}

    def hang() -> None:
        with hung.connect() as conn:
            try:
                with conn.transaction():
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ORGANIZATION_LOCK_NAMESPACE, keys[0])
                    )
                    locked.set()
                    time.sleep(6)  # hung: no statement, transaction open
                    conn.execute("SELECT 1")
            except psycopg.Error as error:
                outcome["error"] = error

    worker = threading.Thread(target=hang)
    worker.start()
    assert locked.wait(10)
    started = time.monotonic()
    result = run_refresh(PostgresResource(database_url=database_url, lock_timeout_seconds=30), keys)
    waited = time.monotonic() - started
    worker.join()

    assert result.success and retries(result) == 0
    assert waited < 30
    assert isinstance(outcome.get("error"), psycopg.OperationalError | psycopg.errors.IdleInTransactionSessionTimeout)
    assert rows(generated) > 0


def application_log_rows(conn) -> int:
    return conn.execute("SELECT count(*) FROM application_logs WHERE payload->>'cron_name' = %s",
                        (CRON_NAME,)).fetchone()[0]


def test_a_reversed_partition_range_fails_saying_so_and_writes_no_row(generated, database_url):
    """A range whose start comes after its end holds no partition: the run fails at once
    saying it resolves to no organization, and application_logs gets no row about zero
    organizations."""
    keys = organization_ids(generated)
    result = run_refresh(PostgresResource(database_url=database_url), keys, partition_range=(keys[-1], keys[0]))
    assert not result.success and retries(result) == 0
    assert "the run resolves to no organization" in headline(result), headline(result)
    assert f"{keys[-1]}..{keys[0]}" in headline(result)
    assert application_log_rows(generated) == 0
    assert rows(generated) == 0


def test_a_run_of_organizations_that_do_not_exist_fails_naming_them(generated, database_url):
    """Partitions none of which has an organizations row: a refresh of nothing is no
    success. The run fails at once naming them; its failure row names them too."""
    ghosts = ["00000000-0000-4000-8000-0000000000f1", "00000000-0000-4000-8000-0000000000f2"]
    result = run_refresh(PostgresResource(database_url=database_url), ghosts)
    payload = assert_fails_at_once(generated, result, "the run resolves to no organization")
    assert all(ghost in headline(result) for ghost in ghosts), headline(result)
    assert payload["organizations"] == ghosts and payload["organization_count"] == 2
    assert application_log_rows(generated) == 1
    assert rows(generated) == 0


def test_a_lock_timeout_behind_the_application_names_it_after_the_retries(generated, database_url):
    """The application holds a client's row: the refresh's foreign-key check waits for it
    past lock_timeout, is retried (transient), and the run's headline and its
    application_logs row then name the table and the blocking process, not another refresh."""
    keys = organization_ids(generated)
    with psycopg.connect(database_url, application_name="booking-app") as application:
        application.execute("SELECT 1 FROM square_existing_clients WHERE organization_id = %s"
                            " ORDER BY square_customer_id LIMIT 1 FOR UPDATE", (keys[0],))
        result = run_refresh(PostgresResource(database_url=database_url, lock_timeout_seconds=1), keys)
        expected = ("a row lock on table square_existing_clients held by the application or another client"
                    f" (pid {application.info.backend_pid}, role ")
    payload = logged_failure(generated, result.run_id)
    assert not result.success and retries(result) == 3
    assert "lock timeout" in headline(result) and expected in headline(result), headline(result)
    assert "another refresh" not in headline(result)
    assert expected in payload["error"]
    assert rows(generated) == 0
