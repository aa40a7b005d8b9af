"""The pipeline on Citus (docs/citus.md): migrate distributes its tables beside the
application's, and the refresh (both modes), the segment change log, retention, the
hourly tick's selection, the view, the eight checks and the audit before commit give
exactly what the same run gives on plain PostgreSQL, cell for cell."""

from datetime import timedelta
from unittest import mock

import psycopg
import pytest

from customer_analytics_pipeline.warehouse import refresh as refresh_module
from customer_analytics_pipeline.warehouse.checks.evaluation import evaluate_checks
from customer_analytics_pipeline.warehouse.citus import (
    COLOCATE_WITH,
    PIPELINE_TABLES,
    distribute_source_tables,
    source_tables_distributed,
)
from customer_analytics_pipeline.warehouse.migrations import create_source_tables, migrate
from customer_analytics_pipeline.warehouse.refresh import OrganizationsFailed, RefreshParameters
from customer_analytics_pipeline.warehouse.segment_history import delete_expired_segment_changes
from customer_analytics_pipeline.warehouse.ticks import select_organizations_due
from customer_analytics_pipeline.warehouse.views import ensure_view
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, organizations_by_size, refresh
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)
from customer_analytics_pipeline_tests.view_oracle import assert_view_frames_equal_cellwise, read_appointments_view

pytestmark = pytest.mark.citus


def citus_tables(conn) -> dict[str, tuple[str, int]]:
    return {name: (kind, colocation) for name, kind, colocation in conn.execute(
        "SELECT table_name::text, citus_table_type, colocation_id FROM citus_tables")}


def test_migrate_distributes_every_pipeline_table_beside_the_clients(citus_database_url):
    with psycopg.connect(citus_database_url, autocommit=True) as conn:
        tables = citus_tables(conn)
        assert source_tables_distributed(conn)
        local = [row[0] for row in conn.execute(
            "SELECT c.relname FROM pg_class AS c WHERE c.relkind IN ('r', 'p')"
            " AND c.relnamespace = 'public'::regnamespace AND NOT EXISTS"
            " (SELECT 1 FROM citus_tables AS ct WHERE ct.table_name = c.oid)")]
        assert local == []  # no table of the pipeline (or the application) left on the coordinator only
        for table, kind in PIPELINE_TABLES.items():
            assert tables[table][0] == kind, table
            if kind == "distributed":
                assert tables[table][1] == tables[COLOCATE_WITH][1], f"{table} is not co-located with {COLOCATE_WITH}"
        assert migrate(conn) == []  # a second migrate changes nothing


def test_migrate_distributes_tables_created_before_the_move_to_citus(make_citus_database):
    """The pipeline migrated while the application's tables were still local; after the
    application distributed them, the next migrate distributes the pipeline's."""
    with psycopg.connect(make_citus_database(), autocommit=True) as conn:
        create_source_tables(conn)
        migrate(conn)
        assert not source_tables_distributed(conn)
        assert set(citus_tables(conn)) == set()  # nothing distributed on a coordinator used as plain PostgreSQL
        distribute_source_tables(conn)
        migrate(conn)
        assert {table: kind for table, (kind, _) in citus_tables(conn).items() if table in PIPELINE_TABLES} \
            == PIPELINE_TABLES


def assert_same_analytics(twin, as_of):
    """customer_analytics on Citus equals PostgreSQL's and an independent recomputation."""
    citus = read_customer_analytics(twin.citus)
    assert_frames_equal_cellwise(citus, read_customer_analytics(twin.postgres))
    assert_frames_equal_cellwise(citus, expected_customer_analytics(load_source_frames(twin.citus), as_of))


def same_query(twin, query):
    rows = [conn.execute(query).fetchall() for conn in (twin.citus, twin.postgres)]
    assert rows[0] == rows[1], query
    return rows[0]


def pipeline_bookkeeping(twin):
    """The change log (changed_at as each customer's refresh number), the refresh state
    (everything but instants and the proof's value, which hashes row versions) and the
    recorded segment snapshots: equal on both."""
    same_query(twin,
        "SELECT organization_id::text, square_customer_id, from_segment, to_segment, as_of,"
        " dense_rank() OVER (PARTITION BY organization_id, square_customer_id ORDER BY changed_at)"
        " FROM customer_segment_changes ORDER BY 1, square_customer_id COLLATE \"C\", 6")
    same_query(twin,
        "SELECT organization_id::text, mode, as_of, row_count, source_fingerprint IS NOT NULL, new_days,"
        " active_days, at_risk_days, segments_valid_until::text, verified_as_of FROM customer_analytics_refresh_state"
        " ORDER BY 1")


def comparable(result):
    return (result.organizations, result.unknown_organization_ids, result.rows_recomputed,
            result.segment_counts, result.segment_movements)


def refresh_both(twin, mode, as_of, organizations=None):
    results = [refresh(conn, mode, as_of, organizations) for conn in (twin.citus, twin.postgres)]
    assert comparable(results[0]) == comparable(results[1])
    return results[0]


def tick_both(twin, as_of):
    """The hourly tick's selection on both (it records the verified ones): the same
    organizations due for the same reasons."""
    selections = [
        select_organizations_due(conn, organization_ids(conn), RefreshParameters(mode="recent", as_of=as_of))
        for conn in (twin.citus, twin.postgres)
    ]
    assert selections[0] == selections[1]
    return selections[0]


def change_sources(twin, organization):
    """Late syncs, hard deletes and moves, stamped weeks back, on both databases."""
    customers = [row[0] for row in twin.postgres.execute(
        "SELECT c.square_customer_id FROM square_existing_clients AS c WHERE c.organization_id = %s"
        " AND EXISTS (SELECT 1 FROM bookings AS b WHERE b.organization_id = c.organization_id"
        " AND b.square_customer_id = c.square_customer_id AND b.status = 'ACCEPTED')"
        " AND EXISTS (SELECT 1 FROM payments AS p WHERE p.organization_id = c.organization_id"
        " AND p.square_customer_id = c.square_customer_id AND p.status = 'COMPLETED')"
        " ORDER BY 1 LIMIT 5", (organization,))]
    late, deleted, moved_from, moved_to, renamed = customers
    params = {"org": organization, "stamp": anchor() - timedelta(days=40), "late": late, "deleted": deleted,
              "from": moved_from, "to": moved_to, "renamed": renamed}
    twin.both("INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, tip_cents,"
              " created_at, updated_at) VALUES (%(org)s, 'late-payment', %(late)s, 'COMPLETED', 12345, 500,"
              " %(stamp)s, %(stamp)s)", params)
    twin.both("INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
              " customer_note, created_at, updated_at) VALUES (%(org)s, 'late-booking', %(late)s, 'loc-late',"
              " 'ACCEPTED', %(stamp)s, 'synced late', %(stamp)s, %(stamp)s)", params)
    twin.both("DELETE FROM payments WHERE organization_id = %(org)s AND square_customer_id = %(deleted)s"
              " AND status = 'COMPLETED'", params)
    twin.both("DELETE FROM bookings WHERE organization_id = %(org)s AND square_customer_id = %(deleted)s"
              " AND status = 'ACCEPTED'", params)
    twin.both("UPDATE bookings SET square_customer_id = %(to)s WHERE organization_id = %(org)s"
              " AND square_customer_id = %(from)s", params)
    twin.both("DELETE FROM square_existing_clients WHERE organization_id = %(org)s"
              " AND square_customer_id = %(renamed)s", params)
    twin.both("INSERT INTO square_existing_clients (organization_id, square_customer_id, given_name,"
              " created_at, updated_at) VALUES (%(org)s, 'brand-new-client', 'New', %(stamp)s, %(stamp)s)", params)


def test_full_recent_tick_and_retention_equal_postgres(twin):
    as_of = anchor()
    refresh_both(twin, "full", as_of)
    assert_same_analytics(twin, as_of)
    pipeline_bookkeeping(twin)

    hour = as_of + timedelta(hours=1)
    due = [o.organization_id for o in tick_both(twin, hour).due]  # segment boundaries the hour passed
    if due:
        refresh_both(twin, "recent", hour, due)
    # Then nothing is left to do: every organization proven current, nobody recomputed.
    assert tick_both(twin, hour).due == ()
    assert refresh_both(twin, "recent", hour).rows_recomputed == 0
    assert_same_analytics(twin, hour)

    organization = organizations_by_size(twin.postgres)[0]
    change_sources(twin, organization)
    later = as_of + timedelta(hours=2)
    due = tick_both(twin, later).due
    assert [o.organization_id for o in due] == [organization]
    result = refresh_both(twin, "recent", later, [o.organization_id for o in due])
    assert result.rows_recomputed == 5  # late, deleted, moved from, moved to, the new client
    assert result.total("rows_deleted") == 1
    assert_same_analytics(twin, later)

    # Weeks later, time alone moves segments: the tick finds them due, recent moves them.
    weeks = as_of + timedelta(days=45)
    due = tick_both(twin, weeks).due
    assert due
    moved = refresh_both(twin, "recent", weeks)
    assert moved.segment_changes > 0
    assert_same_analytics(twin, weeks)
    pipeline_bookkeeping(twin)

    # full again agrees, then retention deletes the same (here: every) change row.
    refresh_both(twin, "full", weeks)
    assert_same_analytics(twin, weeks)
    organizations = organization_ids(twin.postgres)
    twin.both("UPDATE customer_segment_changes SET changed_at = '2001-01-01T00:00:00Z'"
              " WHERE from_segment IS NULL")  # each customer's first row: one per key
    deleted = [delete_expired_segment_changes(conn, organizations, keep_days=30, batch_size=40)
               for conn in (twin.citus, twin.postgres)]
    assert deleted[0] == deleted[1] > 40  # several batches
    same_query(twin, "SELECT count(*) FROM customer_segment_changes")


def test_views_equal_postgres(twin):
    for conn in (twin.citus, twin.postgres):
        refresh(conn, "full", anchor())
        ensure_view(conn)
    view = read_appointments_view(twin.citus)
    assert len(view) > 0
    assert_view_frames_equal_cellwise(view, read_appointments_view(twin.postgres))
    organization = organization_ids(twin.citus)[0]
    same_query(twin, "SELECT * FROM analytics_appointments_by_location_daily"
                     f" WHERE organization_id = '{organization}' ORDER BY 1, 2, 3")
    # The weekly movements, summed over weeks (the two refreshes ran a moment apart).
    weekly = same_query(twin, "SELECT organization_id, from_segment, to_segment, sum(customers)"
                              " FROM analytics_segment_movements_weekly GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS FIRST, 3")
    assert weekly


def check_verdicts(conn):
    return {o.check_name: (o.passed, dict(o.failures.rows_by_organization), o.failures.error)
            for o in evaluate_checks(conn)}


CORRUPTIONS = {
    # check: a statement that breaks exactly that check for one customer (%(org)s, %(customer)s)
    "row_count_matches_clients": "DELETE FROM customer_analytics WHERE organization_id = %(org)s"
                                 " AND square_customer_id = %(customer)s",
    "sample_record_valid": "UPDATE customer_analytics SET total_no_shows = -1 WHERE organization_id = %(org)s"
                           " AND square_customer_id = %(customer)s",
    "segment_distribution": "UPDATE customer_analytics SET customer_segment = 'GONE' WHERE organization_id = %(org)s"
                            " AND square_customer_id = %(customer)s",
    "avg_ticket_consistent": "UPDATE customer_analytics SET avg_ticket_cents = 1 WHERE organization_id = %(org)s"
                             " AND square_customer_id = %(customer)s",
    "first_booking_at_matches_source": "UPDATE customer_analytics SET first_booking_id = 'not-the-first'"
                                       " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s",
    "referral_data_valid": "UPDATE customer_analytics SET total_referrals = 999 WHERE organization_id = %(org)s"
                           " AND square_customer_id = %(customer)s",
    "appointments_view_available": "UPDATE customer_analytics SET first_booking_location_id = 'nowhere'"
                                   " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s",
    "table_exists": "ALTER TABLE customer_analytics DROP COLUMN total_tips_cents",
}


def test_the_eight_checks_pass_on_clean_data_and_fail_on_corrupt_data_as_on_postgres(twin):
    for conn in (twin.citus, twin.postgres):
        refresh(conn, "full", anchor())
        ensure_view(conn)
    clean = check_verdicts(twin.citus)
    assert len(clean) == 8
    assert all(passed for passed, _, _ in clean.values()), clean
    assert clean == check_verdicts(twin.postgres)

    organization = organizations_by_size(twin.postgres)[0]
    customers = [row[0] for row in twin.postgres.execute(
        "SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s"
        " AND total_payments > 0 AND first_booking_at IS NOT NULL ORDER BY 1 LIMIT 7", (organization,))]
    for (check, statement), customer in zip(CORRUPTIONS.items(), [*customers, None], strict=True):
        twin.both(statement, {"org": organization, "customer": customer})
        verdicts = check_verdicts(twin.citus)
        assert not verdicts[check][0], f"{check} passed on corrupt data on Citus"
        assert verdicts == check_verdicts(twin.postgres), check


def test_bad_data_fails_one_organization_and_commits_the_others_as_on_postgres(twin):
    as_of = anchor()
    for conn in (twin.citus, twin.postgres):
        refresh(conn, "full", as_of)
    bad, *good = organizations_by_size(twin.postgres)[:3]
    customer = twin.postgres.execute(
        "SELECT min(square_customer_id COLLATE \"C\") FROM square_existing_clients WHERE organization_id = %s",
        (bad,)).fetchone()[0]
    # Two completed payments whose sum overflows bigint.
    twin.both("INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at,"
              " updated_at) SELECT %(org)s, 'huge-' || n, %(customer)s, 'COMPLETED', 9000000000000000000,"
              " %(stamp)s, %(stamp)s FROM generate_series(1, 2) AS n",
              {"org": bad, "customer": customer, "stamp": as_of})
    twin.both("UPDATE square_existing_clients SET given_name = 'Changed' WHERE organization_id = ANY(%s)", (good,))
    before = read_customer_analytics(twin.citus, [bad])
    failures = []
    for conn in (twin.citus, twin.postgres):
        with pytest.raises(OrganizationsFailed) as raised:
            refresh(conn, "full", as_of + timedelta(hours=1), [bad, *good])
        failures.append(raised.value)
    citus, postgres = failures
    assert [(f.organization_id, f.square_customer_id) for f in citus.failures] == [(bad, customer)]
    assert "SQLSTATE 22003" in citus.failures[0].cause
    assert [(f.organization_id, f.square_customer_id) for f in citus.failures] \
        == [(f.organization_id, f.square_customer_id) for f in postgres.failures]
    assert comparable(citus.refreshed) == comparable(postgres.refreshed)
    assert sorted(o.organization_id for o in citus.refreshed.organizations) == sorted(good)
    assert_frames_equal_cellwise(read_customer_analytics(twin.citus, [bad]), before)  # kept its rows
    assert_frames_equal_cellwise(read_customer_analytics(twin.citus), read_customer_analytics(twin.postgres))
    pipeline_bookkeeping(twin)


def test_a_wrong_metric_fails_its_audit_and_rolls_back_one_organization_as_on_postgres(twin):
    """The audit before commit on Citus: the refresh's own wrong metric (written, stamped
    and logged by its upsert) is found among the rows the transaction wrote, with no
    sample of the others (same as_of: no hour passed), and only its organization keeps
    its previous rows, as on PostgreSQL."""
    as_of = anchor()
    for conn in (twin.citus, twin.postgres):
        refresh(conn, "full", as_of)
    bad, *good = organizations_by_size(twin.postgres)[:3]
    (customer,) = twin.postgres.execute(
        "SELECT min(square_customer_id COLLATE \"C\") FROM customer_analytics WHERE organization_id = %s"
        " AND total_payments > 0", (bad,)).fetchone()
    before = read_customer_analytics(twin.citus, [bad])
    changes_before = same_query(twin, "SELECT count(*) FROM customer_segment_changes")
    refresh_in_transaction = refresh_module._refresh_in_transaction

    def computing_a_wrong_average(conn, organization_ids, parameters, log):
        def corrupt_before_writing(message):
            if message.startswith("recomputed"):
                conn.execute("UPDATE refresh_rows SET avg_ticket_cents = avg_ticket_cents + 1,"
                             " customer_segment = 'VIP' WHERE organization_id = %s AND square_customer_id = %s",
                             (bad, customer))
            log(message)

        return refresh_in_transaction(conn, organization_ids, parameters, corrupt_before_writing)

    failures = []
    with mock.patch.object(refresh_module, "_refresh_in_transaction", computing_a_wrong_average):
        for conn in (twin.citus, twin.postgres):
            with pytest.raises(OrganizationsFailed) as raised:
                refresh(conn, "full", as_of, [bad, *good])
            failures.append(raised.value)
    citus, postgres = failures
    assert [(f.organization_id, f.cause) for f in citus.failures] == [(f.organization_id, f.cause)
                                                                     for f in postgres.failures]
    (failure,) = citus.failures
    assert failure.organization_id == bad
    assert f"avg_ticket_consistent: 1 row(s), customers {customer}" in failure.cause
    assert "segment_distribution: 1 row(s)" in failure.cause
    assert sorted(o.organization_id for o in citus.refreshed.organizations) == sorted(good)
    assert_frames_equal_cellwise(read_customer_analytics(twin.citus, [bad]), before)  # kept its rows
    assert_frames_equal_cellwise(read_customer_analytics(twin.citus), read_customer_analytics(twin.postgres))
    assert same_query(twin, "SELECT count(*) FROM customer_segment_changes") == changes_before  # no change row
