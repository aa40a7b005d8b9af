"""The skip rule of `recent` (docs/contract.md, customer_analytics): a customer of the recent set is skipped only
when none of its client, booking, payment or referral rows was inserted, updated,
deleted or moved since its row was computed. Every change here is one a watermark on
`updated_at` or on the clock would miss: stamped weeks back (late sync, older than the
previous refresh), a hard delete, a row moved between customers."""

from datetime import timedelta

import pytest

from customer_analytics_pipeline_tests.helpers import anchor, largest_organization, refresh
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)

LOOKBACK = timedelta(days=90)


def assert_matches_oracle(conn, as_of):
    assert_frames_equal_cellwise(
        read_customer_analytics(conn), expected_customer_analytics(load_source_frames(conn), as_of)
    )


def customers_with(conn, organization_id, where: str, count: int) -> list[str]:
    """Customers of the organization with an accepted booking, a completed payment and a
    row stamped inside the window of the next recent (already so at the previous refresh)."""
    rows = conn.execute(
        "SELECT c.square_customer_id FROM square_existing_clients AS c"
        " WHERE c.organization_id = %(org)s AND " + where + " ORDER BY c.square_customer_id LIMIT %(count)s",
        {"org": organization_id, "count": count, "since": anchor() - LOOKBACK + timedelta(days=2)},
    ).fetchall()
    assert len(rows) == count
    return [row[0] for row in rows]


IN_WINDOW = (
    "EXISTS (SELECT 1 FROM bookings AS b WHERE b.organization_id = c.organization_id"
    " AND b.square_customer_id = c.square_customer_id AND b.status = 'ACCEPTED' AND b.updated_at >= %(since)s)"
    " AND EXISTS (SELECT 1 FROM payments AS p WHERE p.organization_id = c.organization_id"
    " AND p.square_customer_id = c.square_customer_id AND p.status = 'COMPLETED')"
)


@pytest.fixture
def computed(generated):
    """``generated`` refreshed in full at the anchor; then a recent one hour later."""
    refresh(generated, "full", anchor())
    return generated


def test_recent_with_nothing_changed_recomputes_nobody(computed):
    later = anchor() + timedelta(hours=1)
    result = refresh(computed, "recent", later)
    assert result.rows_recomputed == 0
    assert result.total("rows_inserted") == 0
    assert_matches_oracle(computed, later)


def test_late_synced_rows_hard_deletes_and_moves_reach_recent(computed):
    organization = largest_organization(computed)
    late, deleted, moved_from, moved_to = customers_with(computed, organization, IN_WINDOW, 4)
    weeks_back = anchor() - timedelta(days=40)  # inside the window, older than the previous refresh
    params = {"org": organization, "stamp": weeks_back}
    # Late sync: a completed payment arrives now, stamped weeks ago.
    computed.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, tip_cents,"
        " created_at, updated_at) VALUES (%(org)s, 'late-payment', %(customer)s, 'COMPLETED', 12345, 500,"
        " %(stamp)s, %(stamp)s)", {**params, "customer": late},
    )
    # Hard deletes: every completed payment and one accepted booking of a customer.
    computed.execute("DELETE FROM payments WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"
                     " AND status = 'COMPLETED'", {**params, "customer": deleted})
    computed.execute(
        "DELETE FROM bookings WHERE (organization_id, id) IN (SELECT organization_id, id FROM bookings"
        " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s AND status = 'ACCEPTED'"
        " ORDER BY start_at LIMIT 1)", {**params, "customer": deleted},
    )
    # A move between customers, keeping its old stamp.
    computed.execute(
        "UPDATE bookings SET square_customer_id = %(to)s WHERE (organization_id, id) IN (SELECT organization_id, id"
        " FROM bookings WHERE organization_id = %(org)s AND square_customer_id = %(from)s AND status = 'ACCEPTED'"
        " ORDER BY start_at DESC LIMIT 1)", {**params, "from": moved_from, "to": moved_to},
    )
    later = anchor() + timedelta(hours=1)
    result = refresh(computed, "recent", later)

    assert result.rows_recomputed == 4
    assert result.total("rows_updated") >= 4
    assert_matches_oracle(computed, later)


CHANGES = {
    "client": "UPDATE square_existing_clients SET given_name = 'Renamed', updated_at = %(stamp)s"
              " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s",
    "booking": "UPDATE bookings SET status = 'NO_SHOW', updated_at = %(stamp)s WHERE (organization_id, id) IN"
               " (SELECT organization_id, id FROM bookings WHERE organization_id = %(org)s"
               " AND square_customer_id = %(customer)s AND status = 'ACCEPTED' ORDER BY id LIMIT 1)",
    "payment": "UPDATE payments SET refunded_cents = refunded_cents + 777, updated_at = %(stamp)s"
               " WHERE (organization_id, id) IN (SELECT organization_id, id FROM payments"
               " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s AND status = 'COMPLETED'"
               " ORDER BY id LIMIT 1)",
    "referral": "INSERT INTO referral_profiles (organization_id, square_customer_id, referral_code, activated_at,"
                " referral_source, total_referrals, total_rewards_cents, created_at, updated_at)"
                " VALUES (%(org)s, %(customer)s, 'CODE-NEW', %(stamp)s, 'friend', 3, 4500, %(stamp)s, %(stamp)s)"
                " ON CONFLICT (organization_id, square_customer_id) DO UPDATE"
                " SET total_referrals = referral_profiles.total_referrals + 3, updated_at = %(stamp)s",
}


@pytest.mark.parametrize("table", CHANGES)
def test_a_change_in_each_source_table_alone_reaches_recent(computed, table):
    """One row of one table changes, stamped weeks back (before the previous refresh)."""
    organization = largest_organization(computed)
    (customer,) = customers_with(computed, organization, IN_WINDOW, 1)
    before = computed.execute(
        "SELECT ca::text FROM customer_analytics AS ca WHERE organization_id = %s AND square_customer_id = %s",
        (organization, customer),
    ).fetchone()
    changed = computed.execute(
        CHANGES[table], {"org": organization, "customer": customer, "stamp": anchor() - timedelta(days=40)}
    ).rowcount
    assert changed == 1
    later = anchor() + timedelta(hours=1)
    result = refresh(computed, "recent", later)

    assert result.rows_recomputed == 1
    after = computed.execute(
        "SELECT ca::text FROM customer_analytics AS ca WHERE organization_id = %s AND square_customer_id = %s",
        (organization, customer),
    ).fetchone()
    assert after != before
    assert_matches_oracle(computed, later)


def test_a_recomputed_customer_is_skipped_by_the_next_recent(computed):
    """The fingerprint stored when `recent` recomputes a changed customer is the new one,
    so the recent after it has nothing left to recompute."""
    organization = largest_organization(computed)
    (customer,) = customers_with(computed, organization, IN_WINDOW, 1)
    computed.execute(CHANGES["payment"], {"org": organization, "customer": customer,
                                          "stamp": anchor() - timedelta(days=40)})
    assert refresh(computed, "recent", anchor() + timedelta(hours=1)).rows_recomputed == 1

    again = refresh(computed, "recent", anchor() + timedelta(hours=2))

    assert again.rows_recomputed == 0
    assert_matches_oracle(computed, anchor() + timedelta(hours=2))


def test_a_no_op_full_neither_rewrites_nor_locks_the_stored_fingerprints(computed):
    """An unchanged fingerprint never reaches INSERT ... ON CONFLICT DO UPDATE, which would
    lock the row (xmax set, the page dirtied and WAL written) even when its WHERE then
    declines the update."""
    query = "SELECT count(*), count(*) FILTER (WHERE xmax <> '0'), sum(xmin::text::bigint)" \
            " FROM customer_analytics_source_fingerprints"
    rows, locked, versions = computed.execute(query).fetchone()
    assert rows > 0 and locked == 0

    refresh(computed, "full", anchor())

    assert computed.execute(query).fetchone() == (rows, 0, versions)
