"""Days are exactly 86,400 seconds, whatever the session's TimeZone: the segment
boundaries, recent's segment pass and the tick's next-change instant, compared with the
oracle in a session whose zone has daylight saving (America/New_York left it on
2026-11-01, so 30, 90 and 180 calendar days before 2026-11-20 are an hour off)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from customer_analytics_pipeline.warehouse.refresh import RefreshParameters
from customer_analytics_pipeline.warehouse.ticks import select_organizations_due
from customer_analytics_pipeline_tests.helpers import refresh
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)
# Each customer's only booking half an hour before an exact boundary of AS_OF, and so
# half an hour after the calendar-day boundary in New York.
BOOKINGS = {
    "just-not-new": AS_OF - timedelta(days=30) - HALF_HOUR,
    "just-not-active": AS_OF - timedelta(days=90) - HALF_HOUR,
    "just-lost": AS_OF - timedelta(days=180) - HALF_HOUR,
    "new-until-11-30": AS_OF - timedelta(days=30) + timedelta(days=1) - HALF_HOUR,
}


@pytest.fixture
def new_york(conn):
    organization_id = str(uuid.uuid4())
    conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'dst')", (organization_id,))
    for customer, start_at in BOOKINGS.items():
        conn.execute("INSERT INTO square_existing_clients (organization_id, square_customer_id, created_at,"
                     " updated_at) VALUES (%s, %s, %s, %s)", (organization_id, customer, start_at, start_at))
        conn.execute("INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
                     " created_at, updated_at) VALUES (%s, %s, %s, 'L1', 'ACCEPTED', %s, %s, %s)",
                     (organization_id, f"b-{customer}", customer, start_at, start_at, start_at))
    conn.execute("SET TimeZone = 'America/New_York'")
    return conn


def assert_matches_oracle(conn, as_of):
    assert_frames_equal_cellwise(read_customer_analytics(conn), expected_customer_analytics(load_source_frames(conn),
                                                                                           as_of))


def segments(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT square_customer_id, customer_segment FROM customer_analytics").fetchall())


def test_full_and_recent_count_days_of_86400_seconds(new_york):
    refresh(new_york, "full", AS_OF - timedelta(days=2))
    refresh(new_york, "recent", AS_OF)
    assert segments(new_york) == {"just-not-new": "ACTIVE", "just-not-active": "AT_RISK", "just-lost": "LOST",
                                  "new-until-11-30": "NEW"}
    assert_matches_oracle(new_york, AS_OF)
    refresh(new_york, "full", AS_OF)
    assert_matches_oracle(new_york, AS_OF)


def test_the_tick_sees_a_boundary_pass_at_the_exact_instant(new_york):
    """The NEW customer stops being NEW at 11:30 UTC the next day (30 days of 86,400 s);
    in New York calendar days that would be 12:30 UTC, after the tick at 12:00."""
    refresh(new_york, "full", AS_OF)
    next_day = AS_OF + timedelta(days=1)
    organizations = [row[0] for row in new_york.execute("SELECT id::text FROM organizations")]

    before = select_organizations_due(new_york, organizations, RefreshParameters(
        mode="recent", as_of=next_day - timedelta(hours=1)))
    after = select_organizations_due(new_york, organizations, RefreshParameters(mode="recent", as_of=next_day))

    assert not before.due
    assert [o.reason for o in after.due] == ["segment change due"]
    refresh(new_york, "recent", next_day)
    assert segments(new_york)["new-until-11-30"] == "ACTIVE"
    assert_matches_oracle(new_york, next_day)
