"""The hourly tick's selection (warehouse/ticks.py): organizations whose source rows
changed, whose segments time moves, or that have no proof are due; every other one is
proven current, and after refreshing only the due ones every organization equals a
from-scratch recomputation at the tick's as_of."""

from datetime import timedelta

import pytest

from customer_analytics_pipeline.warehouse.refresh import RefreshParameters
from customer_analytics_pipeline.warehouse.ticks import (
    OrganizationSize,
    balanced_batches,
    organization_sizes,
    select_organizations_due,
)
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, organizations_by_size, refresh
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)


def assert_matches_oracle(conn, as_of, organizations=None):
    expected = expected_customer_analytics(load_source_frames(conn), as_of)
    if organizations is not None:
        expected = expected[expected["organization_id"].isin(organizations)]
    assert_frames_equal_cellwise(read_customer_analytics(conn, organizations), expected)


def tick(conn, as_of):
    """The tick's selection over every organization, then `recent` of the due ones."""
    selection = select_organizations_due(conn, organization_ids(conn), RefreshParameters(mode="recent", as_of=as_of))
    due = [o.organization_id for o in selection.due]
    if due:
        refresh(conn, "recent", as_of, due)
    return selection


def segments_move(conn, organization_id, as_of) -> bool:
    """Whether a recomputation at as_of gives some customer of the organization another segment."""
    expected = expected_customer_analytics(load_source_frames(conn), as_of)
    expected = expected[expected["organization_id"] == organization_id].set_index("square_customer_id")
    stored = dict(conn.execute(
        "SELECT square_customer_id, customer_segment FROM customer_analytics WHERE organization_id = %s",
        (organization_id,)).fetchall())
    return any(stored[customer] != segment for customer, segment in expected["customer_segment"].items())


@pytest.fixture
def computed(generated):
    refresh(generated, "full", anchor())
    return generated


def test_a_quiet_hour_refreshes_nothing_and_records_every_organization_verified(computed):
    later = anchor() + timedelta(hours=1)
    selection = select_organizations_due(computed, organization_ids(computed),
                                         RefreshParameters(mode="recent", as_of=later))

    # Only organizations whose segments the hour really moves may be due.
    assert all(o.reason == "segment change due" and segments_move(computed, o.organization_id, later)
               for o in selection.due), selection.due
    if selection.due:
        refresh(computed, "recent", later, [o.organization_id for o in selection.due])
    assert selection.verified == len(organization_ids(computed)) - len(selection.due)
    verified = computed.execute(
        "SELECT count(*) FROM customer_analytics_refresh_state WHERE verified_as_of = %s", (later,)).fetchone()[0]
    assert verified == selection.verified
    assert_matches_oracle(computed, later)


def test_changed_organizations_are_due_and_every_organization_ends_exact(computed):
    """A hard delete of a customer's only booking, a late-synced payment stamped weeks
    back and a status flip, in three organizations."""
    first, second, third = organizations_by_size(computed)[:3]
    only_booking = computed.execute(
        "SELECT organization_id, square_customer_id FROM bookings WHERE organization_id = %s"
        " AND square_customer_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) = 1 LIMIT 1", (first,)).fetchone()
    assert only_booking is not None
    computed.execute("DELETE FROM bookings WHERE organization_id = %s AND square_customer_id = %s", only_booking)
    weeks_back = anchor() - timedelta(days=40)
    computed.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, tip_cents,"
        " created_at, updated_at) SELECT organization_id, 'late-payment', square_customer_id, 'COMPLETED', 4200, 0,"
        " %(stamp)s, %(stamp)s FROM square_existing_clients WHERE organization_id = %(org)s LIMIT 1",
        {"org": second, "stamp": weeks_back})
    computed.execute(
        "UPDATE bookings SET status = 'NO_SHOW' WHERE (organization_id, id) IN (SELECT organization_id, id"
        " FROM bookings WHERE organization_id = %s AND status = 'ACCEPTED' LIMIT 1)", (third,))
    later = anchor() + timedelta(hours=1)

    selection = tick(computed, later)

    reasons = {o.organization_id: o.reason for o in selection.due}
    assert {reasons.get(first), reasons.get(second), reasons.get(third)} == {"source rows changed"}
    others = set(reasons) - {first, second, third}
    assert all(reasons[o] == "segment change due" for o in others)
    assert_matches_oracle(computed, later)
    # The refresh left a proof that the next tick accepts.
    assert not {o.organization_id for o in tick(computed, later).due}


def test_twenty_days_without_source_changes_move_segments_exactly(computed):
    later = anchor() + timedelta(days=20)
    selection = tick(computed, later)

    assert selection.due and {o.reason for o in selection.due} == {"segment change due"}
    assert_matches_oracle(computed, later)
    for organization in set(organization_ids(computed)) - {o.organization_id for o in selection.due}:
        refresh_again = refresh(computed, "full", later, [organization])
        assert refresh_again.total("rows_updated") == 0, f"{organization} was verified but full changed it"


def corrupt_one_row(conn, organization) -> str:
    """A wrong row, as one computed before proofs existed might be: only a recomputation puts it right."""
    customer, = conn.execute(
        "UPDATE customer_analytics SET total_payments = total_payments + 5, avg_ticket_cents = NULL"
        " WHERE (organization_id, square_customer_id) = (SELECT organization_id, square_customer_id"
        " FROM customer_analytics WHERE organization_id = %s ORDER BY square_customer_id LIMIT 1)"
        " RETURNING square_customer_id", (organization,)).fetchone()
    return customer


def test_an_organization_without_a_proof_is_due(computed):
    organization = organizations_by_size(computed)[0]
    computed.execute("UPDATE customer_analytics_refresh_state SET source_fingerprint = NULL"
                     " WHERE organization_id = %s", (organization,))
    later = anchor() + timedelta(hours=1)

    selection = tick(computed, later)

    assert {o.organization_id: o.reason for o in selection.due}[organization] == "never refreshed with a proof"
    assert_matches_oracle(computed, later, [organization])


def test_a_customer_without_a_fingerprint_is_recomputed_by_recent(computed):
    organization = organizations_by_size(computed)[0]
    customer = corrupt_one_row(computed, organization)
    computed.execute("DELETE FROM customer_analytics_source_fingerprints WHERE organization_id = %s"
                     " AND square_customer_id = %s", (organization, customer))
    later = anchor() + timedelta(hours=1)

    result = refresh(computed, "recent", later, [organization])

    assert result.rows_recomputed == 1
    assert_matches_oracle(computed, later, [organization])


def test_other_day_counts_or_an_earlier_as_of_are_due(computed):
    organizations = organization_ids(computed)
    other_days = select_organizations_due(
        computed, organizations, RefreshParameters(mode="recent", as_of=anchor(), new_days=31))
    earlier = select_organizations_due(
        computed, organizations, RefreshParameters(mode="recent", as_of=anchor() - timedelta(seconds=1)))
    assert {o.reason for o in other_days.due} == {"day counts changed"} and len(other_days.due) == len(organizations)
    assert {o.reason for o in earlier.due} == {"as_of before the last refresh"}


def test_unknown_organizations_are_named_not_selected(computed):
    ghost = "00000000-0000-4000-8000-000000000000"
    selection = select_organizations_due(computed, [ghost], RefreshParameters(mode="recent", as_of=anchor()))
    assert selection.unknown == (ghost,) and not selection.due and selection.verified == 0


def test_sizes_count_clients_and_batches_balance_customers(computed):
    sizes = organization_sizes(computed, organization_ids(computed))
    assert sum(s.customers for s in sizes) == computed.execute(
        "SELECT count(*) FROM square_existing_clients").fetchone()[0]

    batches = balanced_batches([OrganizationSize(str(n), c) for n, c in enumerate([5, 5, 30, 0, 4, 3, 12])], 10)
    assert [[o.customers for o in batch] for batch in batches] == [[5, 5], [30], [0, 4, 3], [12]]
    with pytest.raises(ValueError, match="customers_per_run"):
        balanced_batches([], 0)
