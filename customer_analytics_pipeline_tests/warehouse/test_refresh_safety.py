"""Reruns rewrite nothing, organizations are isolated, failures roll back, deletions cascade."""

import threading
import time
import uuid

import psycopg
import pytest

from customer_analytics_pipeline.warehouse.locks import ORGANIZATION_LOCK_NAMESPACE
from customer_analytics_pipeline.warehouse.refresh import RefreshParameters, parse_as_of, refresh_customer_analytics
from customer_analytics_pipeline_tests.helpers import (
    anchor,
    largest_organization,
    organization_ids,
    organizations_by_size,
    refresh,
    table_versions,
)


def update_counters(database_url: str) -> tuple[int, int]:
    """customer_analytics's cumulative (n_tup_upd, n_tup_ins) as the statistics system has them."""
    for _ in range(50):
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT n_tup_upd, n_tup_ins FROM pg_stat_user_tables WHERE relname = 'customer_analytics'"
            ).fetchone()
        if row is not None:
            return row
        time.sleep(0.1)
    raise AssertionError("no statistics row for customer_analytics")


def refresh_in_own_session(database_url, mode, as_of):
    """A refresh on a connection that is closed afterwards, which flushes its statistics."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return refresh(conn, mode, as_of)


def wait_for_counters(database_url, predicate):
    deadline = time.monotonic() + 10
    counters = update_counters(database_url)
    while not predicate(counters) and time.monotonic() < deadline:
        time.sleep(0.2)
        counters = update_counters(database_url)
    return counters


@pytest.mark.parametrize("mode", ["full", "recent"])
def test_rerun_with_nothing_changed_rewrites_no_row(generated, database_url, mode):
    as_of = anchor(generated)
    first = refresh_in_own_session(database_url, "full", as_of)
    inserted = first.total("rows_inserted")
    before_counters = wait_for_counters(database_url, lambda c: c[1] >= inserted)
    before = table_versions(generated)

    again = refresh_in_own_session(database_url, mode, as_of)
    time.sleep(1.5)  # statistics are flushed at most once a second
    assert again.total("rows_updated") == 0 and again.total("rows_inserted") == 0
    assert again.total("rows_unchanged") == len(before)
    assert table_versions(generated) == before
    assert update_counters(database_url) == before_counters

    # The same measurement sees a refresh that does change rows.
    generated.execute("UPDATE square_existing_clients SET given_name = 'Changed', updated_at = %s", (as_of,))
    refresh_in_own_session(database_url, mode, as_of)
    changed = wait_for_counters(database_url, lambda c: c[0] > before_counters[0])
    assert changed[0] > before_counters[0]


def test_refresh_of_one_organization_never_touches_another(generated):
    as_of = anchor(generated)
    refresh(generated, "full", as_of)
    first, second = organizations_by_size(generated)[:2]
    second_before = table_versions(generated, second)
    generated.execute("UPDATE square_existing_clients SET given_name = 'Changed', updated_at = %s", (as_of,))

    for mode in ("full", "recent"):
        result = refresh(generated, mode, as_of, [first])
        assert [o.organization_id for o in result.organizations] == [first]
    assert table_versions(generated, second) == second_before
    assert generated.execute(
        "SELECT count(*) FROM customer_analytics WHERE organization_id = %s AND given_name = 'Changed'", (first,)
    ).fetchone()[0] > 0


# Every column of the refresh state, as text: segments_valid_until is 'infinity' for an
# organization whose customers are all LOST, which Python's datetime cannot hold.
STATE_AS_TEXT = "SELECT s::text FROM customer_analytics_refresh_state AS s ORDER BY s.organization_id"


def test_refresh_failing_midway_leaves_previous_rows(generated):
    as_of = anchor(generated)
    refresh(generated, "full", as_of)
    snapshot = generated.execute("SELECT * FROM customer_analytics ORDER BY 1, 2").fetchall()
    state = generated.execute(STATE_AS_TEXT).fetchall()
    generated.execute("UPDATE bookings SET status = 'NO_SHOW', updated_at = %s", (as_of,))

    def fail_after_writing(conn, result):
        written = conn.execute("SELECT count(*) FROM customer_analytics WHERE total_no_shows > 0").fetchone()[0]
        assert written > 0, "the failure must come after rows were rewritten"
        raise RuntimeError("simulated crash before commit")

    with pytest.raises(RuntimeError, match="simulated crash"):
        refresh_customer_analytics(
            generated, organization_ids(generated), RefreshParameters(mode="full", as_of=as_of),
            before_commit=fail_after_writing,
        )
    assert generated.execute("SELECT * FROM customer_analytics ORDER BY 1, 2").fetchall() == snapshot
    assert generated.execute(STATE_AS_TEXT).fetchall() == state


def test_deleted_clients_vanish_and_are_reported(generated):
    as_of = anchor(generated)
    org = largest_organization(generated)
    refresh(generated, "full", as_of, [org])
    generated.execute(
        "DELETE FROM square_existing_clients WHERE organization_id = %s AND square_customer_id IN"
        " (SELECT square_customer_id FROM square_existing_clients WHERE organization_id = %s ORDER BY 1 LIMIT 3)",
        (org, org),
    )
    result = refresh(generated, "recent", as_of, [org])
    (clients,) = generated.execute(
        "SELECT count(*) FROM square_existing_clients WHERE organization_id = %s", (org,)
    ).fetchone()
    assert result.total("rows_deleted") == 3
    assert result.total("row_count") == clients


def test_invalid_input_is_refused_with_a_clear_error(conn):
    with pytest.raises(ValueError, match="not a UUID"):
        refresh_customer_analytics(conn, ["not-a-uuid"], RefreshParameters())
    with pytest.raises(ValueError, match="mode must be one of"):
        RefreshParameters(mode="partial")
    with pytest.raises(ValueError, match="new_days"):
        RefreshParameters(new_days=-1)
    with pytest.raises(TypeError, match="lookback_days"):  # recent has no look-back window any more
        RefreshParameters(lookback_days=90)
    with pytest.raises(ValueError, match="as_of must be between"):
        RefreshParameters(as_of=parse_as_of("0001-01-01T00:00:00"))


def test_client_deleted_while_the_refresh_runs_is_skipped(generated, database_url):
    """The application deletes a client after the refresh computed its row but before it
    wrote it: the refresh still commits, without that row."""
    org = largest_organization(generated)
    (victim,) = generated.execute(
        "SELECT square_customer_id FROM square_existing_clients WHERE organization_id = %s ORDER BY 1 LIMIT 1", (org,)
    ).fetchone()

    def delete_client_midway(message):
        if message.startswith("recomputed"):
            with psycopg.connect(database_url, autocommit=True) as application:
                application.execute("DELETE FROM square_existing_clients WHERE organization_id = %s"
                                    " AND square_customer_id = %s", (org, victim))

    with psycopg.connect(database_url, autocommit=True) as conn:
        result = refresh_customer_analytics(
            conn, [org], RefreshParameters(mode="full", as_of=anchor(generated)), log=delete_client_midway
        )
    (clients,) = generated.execute(
        "SELECT count(*) FROM square_existing_clients WHERE organization_id = %s", (org,)).fetchone()
    assert result.total("row_count") == result.total("rows_inserted") == clients
    assert generated.execute("SELECT count(*) FROM customer_analytics WHERE organization_id = %s"
                             " AND square_customer_id = %s", (org, victim)).fetchone()[0] == 0


def test_a_refresh_waiting_for_its_first_organization_holds_none_of_the_others(conn, database_url):
    """Organization locks are taken in ascending key order whatever plan the server
    picks (with sorts disabled, DISTINCT hashes its keys and returns them in any order):
    a refresh of many organizations waiting for the first one's lock holds, as pg_locks
    shows, no lock of the others, so it blocks no other refresh meanwhile."""
    organizations = [str(uuid.UUID(int=n, version=4)) for n in range(1, 25)]
    conn.execute("INSERT INTO organizations (id, name) SELECT id, 'Org' FROM unnest(%s::uuid[]) AS id",
                 (organizations,))
    (first,) = conn.execute("SELECT id FROM unnest(%s::text[]) AS id ORDER BY hashtext(id) LIMIT 1",
                            (organizations,)).fetchone()
    outcome: dict = {}

    def refresh_all() -> None:
        with psycopg.connect(database_url, autocommit=True, options="-c enable_sort=off") as refresher:
            outcome["pid"] = refresher.info.backend_pid
            outcome["result"] = refresh_customer_analytics(
                refresher, organizations, RefreshParameters(mode="full", as_of=anchor()))

    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ORGANIZATION_LOCK_NAMESPACE, first))
        worker = threading.Thread(target=refresh_all)
        worker.start()
        deadline = time.monotonic() + 30
        while not conn.execute("SELECT 1 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                               (holder.info.backend_pid,)).fetchone():
            assert time.monotonic() < deadline and worker.is_alive(), "the refresh never waited for the lock"
            time.sleep(0.05)
        locks = conn.execute(
            "SELECT objid = hashtext(%s)::oid, granted FROM pg_locks WHERE locktype = 'advisory' AND pid = %s",
            (first, outcome["pid"])).fetchall()
        holder.rollback()
    worker.join(60)
    assert locks == [(True, False)], f"waiting for the first organization's lock, the refresh held {locks}"
    assert [o.organization_id for o in outcome["result"].organizations] == sorted(organizations)
