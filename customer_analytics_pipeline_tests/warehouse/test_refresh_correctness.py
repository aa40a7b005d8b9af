"""Each refresh mode against an independent pandas recomputation of docs/contract.md, customer_analytics,."""

import random
from datetime import timedelta

import pytest

from customer_analytics_pipeline_tests.helpers import anchor, largest_organization, refresh
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)


def assert_matches_oracle(conn, as_of, **days):
    expected = expected_customer_analytics(load_source_frames(conn), as_of, **days)
    assert_frames_equal_cellwise(read_customer_analytics(conn), expected)


def segments_by_customer(conn) -> dict:
    return dict(conn.execute(
        "SELECT square_customer_id || organization_id::text, customer_segment FROM customer_analytics").fetchall())


def test_full_refresh_matches_independent_computation(generated):
    as_of = anchor(generated)
    refresh(generated, "full", as_of)
    assert_matches_oracle(generated, as_of)


def test_full_refresh_with_custom_segment_days_matches(generated):
    as_of = anchor(generated)
    days = {"new_days": 10, "active_days": 45, "at_risk_days": 400}
    refresh(generated, "full", as_of, **days)
    assert_matches_oracle(generated, as_of, **days)


def test_generated_data_covers_the_spec_edges(generated):
    """The comparison above is only as good as its data: every named edge is present."""
    one = lambda query: generated.execute(query).fetchone()[0]  # noqa: E731
    future = generated.execute("SELECT count(*) FROM bookings WHERE start_at > %s", (anchor(),)).fetchone()[0]
    assert future > 0
    assert one("SELECT count(*) FROM bookings WHERE square_customer_id IS NULL") > 0
    assert one(
        "SELECT count(*) FROM bookings b WHERE square_customer_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM square_existing_clients c WHERE c.organization_id = b.organization_id"
        " AND c.square_customer_id = b.square_customer_id)"
    ) > 0
    assert one(
        "SELECT count(*) FROM bookings WHERE status NOT IN"
        " ('PENDING','ACCEPTED','DECLINED','CANCELLED_BY_CUSTOMER','CANCELLED_BY_SELLER','NO_SHOW')"
    ) > 0
    assert one(
        "SELECT count(*) FROM (SELECT 1 FROM bookings WHERE status = 'ACCEPTED'"
        " GROUP BY organization_id, square_customer_id, start_at HAVING count(*) > 1) ties"
    ) > 0
    assert one("SELECT count(*) FROM payments WHERE status = 'COMPLETED' AND refunded_cents > 0") > 0
    assert one("SELECT count(*) FROM payments WHERE refunded_cents > amount_cents") > 0
    assert one(
        "SELECT count(*) FROM square_existing_clients c WHERE NOT EXISTS (SELECT 1 FROM bookings b"
        " WHERE b.organization_id = c.organization_id AND b.square_customer_id = c.square_customer_id)"
    ) > 0
    assert one("SELECT count(*) FROM bookings WHERE customer_note ~ '^[ \\t\\r\\n]+$'") > 0
    assert one("SELECT count(*) FROM referral_profiles WHERE activated_at IS NULL") > 0
    for status in ("PENDING", "ACCEPTED", "DECLINED", "CANCELLED_BY_CUSTOMER", "CANCELLED_BY_SELLER", "NO_SHOW"):
        assert one(f"SELECT count(*) FROM bookings WHERE status = '{status}'") > 0, status
    for status in ("APPROVED", "PENDING", "COMPLETED", "CANCELED", "FAILED"):
        assert one(f"SELECT count(*) FROM payments WHERE status = '{status}'") > 0, status


def apply_random_source_changes(conn, stamp, seed=11):
    """Random edits of every source table, all stamped ``stamp``."""
    rng = random.Random(seed)
    org = largest_organization(conn)
    clients = [r[0] for r in conn.execute(
        "SELECT square_customer_id FROM square_existing_clients WHERE organization_id = %s ORDER BY 1", (org,))]
    picked = rng.sample(clients, min(15, len(clients)))
    params = {"org": org, "picked": picked, "stamp": stamp}
    with conn.transaction():
        conn.execute(
            "UPDATE bookings SET status = CASE status WHEN 'ACCEPTED' THEN 'NO_SHOW' ELSE 'ACCEPTED' END,"
            " start_at = start_at - interval '400 days', technician_id = 'tech-moved', updated_at = %(stamp)s"
            " WHERE organization_id = %(org)s AND square_customer_id = ANY(%(picked)s)"
            " AND id IN (SELECT id FROM bookings WHERE organization_id = %(org)s ORDER BY md5(id) LIMIT 40)",
            params,
        )
        conn.execute(
            "INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
            " technician_id, service_variation_id, customer_note, seller_note, created_at, updated_at)"
            " SELECT %(org)s, 'new-' || c, c, 'loc-new', 'ACCEPTED', %(stamp)s - interval '3 days',"
            " 'tech-new', NULL, 'added note', NULL, %(stamp)s, %(stamp)s FROM unnest(%(picked)s::text[]) AS c",
            params,
        )
        conn.execute(
            "UPDATE payments SET status = 'COMPLETED', refunded_cents = refunded_cents + 333, updated_at = %(stamp)s"
            " WHERE organization_id = %(org)s AND square_customer_id = ANY(%(picked)s)",
            params,
        )
        conn.execute(
            "UPDATE square_existing_clients SET given_name = 'Renamed', email_address = NULL, updated_at = %(stamp)s"
            " WHERE organization_id = %(org)s AND square_customer_id = ANY((%(picked)s::text[])[1:3])",
            params,
        )
        conn.execute(
            "INSERT INTO square_existing_clients"
            " (organization_id, square_customer_id, given_name, created_at, updated_at)"
            " VALUES (%(org)s, 'brand-new-client', 'New', %(stamp)s, %(stamp)s)",
            params,
        )
        conn.execute(
            "INSERT INTO referral_profiles (organization_id, square_customer_id, referral_code, activated_at,"
            " referral_source, total_referrals, total_rewards_cents, created_at, updated_at)"
            " SELECT %(org)s, c, 'CODE-' || c, %(stamp)s, 'instagram', 2, 1500, %(stamp)s, %(stamp)s"
            " FROM unnest(%(picked)s::text[]) AS c ON CONFLICT (organization_id, square_customer_id) DO UPDATE"
            " SET activated_at = NULL, total_referrals = 9, updated_at = %(stamp)s",
            params,
        )
    return org


@pytest.mark.parametrize("stamped_before", [timedelta(days=1), timedelta(days=3650)], ids=["recently", "years back"])
def test_recent_after_source_changes_equals_full(generated, stamped_before):
    """However the changes are stamped (recent has no look-back window)."""
    as_of = anchor(generated)
    refresh(generated, "full", as_of)
    later = as_of + timedelta(days=3)
    apply_random_source_changes(generated, stamp=later - stamped_before)

    recent = refresh(generated, "recent", later)
    assert recent.total("rows_updated") > 0 and recent.total("rows_inserted") == 1
    assert recent.rows_recomputed < recent.total("row_count"), "recent must not recompute everyone"
    assert_matches_oracle(generated, later)
    full = refresh(generated, "full", later)
    assert full.total("rows_updated") == 0 and full.total("rows_inserted") == 0


def test_recent_moves_segments_when_only_time_passes(generated):
    as_of = anchor(generated)
    refresh(generated, "full", as_of)
    before = segments_by_customer(generated)
    later = as_of + timedelta(days=75)

    recent = refresh(generated, "recent", later)
    after = segments_by_customer(generated)
    assert sum(before[key] != after[key] for key in before) > 0
    assert recent.total("rows_updated") == sum(before[key] != after[key] for key in before)
    assert_matches_oracle(generated, later)


def test_recent_recomputes_exactly_the_customers_whose_source_changed_whatever_the_stamps(generated):
    """`recent` has no look-back window: a change stamped ten years back, or one that
    left updated_at as it was, is recomputed; so is a customer whose stored fingerprint
    is missing and a client without a row. A customer none of whose source rows changed
    keeps its row as it is (only its segment may move), even a wrong one."""
    as_of = anchor(generated) + timedelta(days=400)
    refresh(generated, "full", as_of - timedelta(days=400))
    org = largest_organization(generated)
    old_stamp, unstamped, unfingerprinted, rowless, untouched = [r[0] for r in generated.execute(
        "SELECT square_customer_id FROM square_existing_clients WHERE organization_id = %s ORDER BY 1 LIMIT 5",
        (org,))]
    with generated.transaction():
        generated.execute("UPDATE square_existing_clients SET given_name = 'Old stamp', updated_at = %s"
                          " WHERE organization_id = %s AND square_customer_id = %s",
                          (as_of - timedelta(days=3650), org, old_stamp))
        generated.execute("UPDATE square_existing_clients SET given_name = 'Unstamped'"
                          " WHERE organization_id = %s AND square_customer_id = %s", (org, unstamped))
        # Rows whose source did not change: only a missing fingerprint or row makes recent look.
        generated.execute("UPDATE customer_analytics SET given_name = 'Stale'"
                          " WHERE organization_id = %s AND square_customer_id = ANY(%s)",
                          (org, [unfingerprinted, untouched]))
        generated.execute("DELETE FROM customer_analytics_source_fingerprints"
                          " WHERE organization_id = %s AND square_customer_id = %s", (org, unfingerprinted))
        generated.execute("DELETE FROM customer_analytics WHERE organization_id = %s AND square_customer_id = %s",
                          (org, rowless))
    result = refresh(generated, "recent", as_of, [org])
    names = dict(generated.execute(
        "SELECT c.square_customer_id, ca.given_name FROM square_existing_clients AS c"
        " LEFT JOIN customer_analytics AS ca USING (organization_id, square_customer_id)"
        " WHERE c.organization_id = %s AND c.square_customer_id = ANY(%s)",
        (org, [old_stamp, unstamped, unfingerprinted, rowless, untouched])).fetchall())
    sources = dict(generated.execute(
        "SELECT square_customer_id, given_name FROM square_existing_clients WHERE organization_id = %s"
        " AND square_customer_id = ANY(%s)", (org, [unfingerprinted, rowless, untouched])).fetchall())
    assert names[old_stamp] == "Old stamp"
    assert names[unstamped] == "Unstamped"
    assert names[unfingerprinted] == sources[unfingerprinted] != "Stale"
    assert names[rowless] == sources[rowless] and result.total("rows_inserted") == 1
    assert names[untouched] == "Stale"
    assert result.rows_recomputed == 4
