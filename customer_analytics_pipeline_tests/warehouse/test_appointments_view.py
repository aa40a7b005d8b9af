"""The appointments view (docs/contract.md, The daily appointments view) against an independent pandas recomputation,
plus its installation rules (versioned, idempotent, replaced when outdated) and the
index its dashboard query needs."""

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.warehouse.views import VIEW_COMMENT, ensure_view, installed_view_comment
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, refresh
from customer_analytics_pipeline_tests.oracle import expected_customer_analytics, load_source_frames
from customer_analytics_pipeline_tests.view_oracle import (
    VIEW_COLUMNS,
    VIEW_NAME,
    assert_view_frames_equal_cellwise,
    expected_appointments_by_location_daily,
    is_exact_iana_zone,
    local_day,
    location_zones,
    read_appointments_view,
)

SQUARE_BOOKING_STATUSES = ("PENDING", "ACCEPTED", "DECLINED", "CANCELLED_BY_CUSTOMER", "CANCELLED_BY_SELLER", "NO_SHOW")


def view_definition(conn) -> tuple:
    """(oid, definition, comment, column names in order) of the installed view."""
    row = conn.execute(
        "SELECT c.oid::bigint, pg_get_viewdef(c.oid, true), obj_description(c.oid, 'pg_class')"
        " FROM pg_class c WHERE c.oid = to_regclass(%s) AND c.relkind = 'v'",
        (VIEW_NAME,),
    ).fetchone()
    if row is None:
        return None
    columns = [r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
        " AND NOT attisdropped ORDER BY attnum",
        (VIEW_NAME,),
    )]
    return (*row, columns)


# --------------------------------------------------------------------------------------
# content: cell for cell against the oracle
# --------------------------------------------------------------------------------------
def test_view_matches_independent_computation(refreshed):
    frames = load_source_frames(refreshed)
    analytics = expected_customer_analytics(frames, anchor())
    expected = expected_appointments_by_location_daily(frames, analytics)
    actual = read_appointments_view(refreshed)
    assert len(expected) > 0
    assert_view_frames_equal_cellwise(actual, expected)
    # The comparison is not trivial: every count column is non-zero somewhere, and
    # there are rows whose new and returning customers share a day.
    for column in VIEW_COLUMNS[3:]:
        assert (expected[column] > 0).any(), column
    assert ((expected["new_customers"] > 0) & (expected["returning_customers"] > 0)).any()


def test_generated_data_covers_the_view_edges(refreshed):
    """The comparison above is only as good as its data: every edge of the day rule is there."""
    frames = load_source_frames(refreshed)
    zones = location_zones(frames)
    bookings = frames["bookings"]
    one = lambda query: refreshed.execute(query).fetchone()[0]  # noqa: E731

    # Locations whose day is the UTC date: NULL, '' , not a zone, a zone in the wrong case.
    odd_zones = {tz for tz in zones.values() if not is_exact_iana_zone(tz)}
    assert {None, "", "Mars/Olympus", "america/new_york"} <= odd_zones, odd_zones

    seen = Counter()
    for org, loc, start_at in bookings[["organization_id", "location_id", "start_at"]].itertuples(
        index=False, name=None
    ):
        utc_day = start_at.to_pydatetime().date()
        if (org, loc) not in zones:
            seen["no location row"] += 1
            # a real location's id in another case: still no row, so the UTC date
            twins = [tz for (o, other), tz in zones.items()
                     if o == org and other.lower() == loc.lower() and other != loc]
            if twins and is_exact_iana_zone(twins[0]) and local_day(start_at, twins[0]) != utc_day:
                seen["wrong-case location id, local date of its twin differs"] += 1
            continue
        tz = zones[(org, loc)]
        if tz is None:
            seen["NULL zone"] += 1
        elif tz == "":
            seen["empty zone"] += 1
        elif tz == "america/new_york":
            if local_day(start_at, "America/New_York") != utc_day:
                seen["wrong-case zone, New York date differs"] += 1
        elif tz == "Mars/Olympus":
            seen["invalid zone"] += 1
        elif is_exact_iana_zone(tz):
            zone = ZoneInfo(tz)
            local = start_at.to_pydatetime().astimezone(zone)
            if local.date() != utc_day:
                side = "west" if local.utcoffset() < timedelta(0) else "east"
                seen[f"local date differs from UTC date {side}"] += 1
            if local.hour == 0 or local.hour == 23:
                seen["within an hour of local midnight"] += 1
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
            next_midnight = midnight + timedelta(days=1)  # wall-clock arithmetic: next local midnight
            if midnight.utcoffset() != next_midnight.utcoffset():
                seen[f"offset change day {tz} " + ("spring" if next_midnight.utcoffset() > midnight.utcoffset()
                                                  else "fall")] += 1
    for edge in (
        "no location row", "wrong-case location id, local date of its twin differs", "NULL zone", "empty zone",
        "wrong-case zone, New York date differs", "invalid zone", "local date differs from UTC date west",
        "local date differs from UTC date east", "within an hour of local midnight",
        "offset change day America/New_York spring", "offset change day America/New_York fall",
        "offset change day Europe/London spring", "offset change day Europe/London fall",
    ):
        assert seen[edge] > 0, (edge, dict(seen))

    # New customers whose first booking is at a location whose day is the UTC date.
    analytics = expected_customer_analytics(frames, anchor())
    first_at_odd = [
        (org, loc) for org, loc in analytics[["organization_id", "first_booking_location_id"]].itertuples(
            index=False, name=None
        ) if loc is not None and not is_exact_iana_zone(zones.get((org, loc)))
    ]
    assert len({zones.get(key, "no row") for key in first_at_odd}) >= 4, first_at_odd

    # Appointment counts include every booking: statuses outside Square's list, walk-ins
    # (NULL customer) and customers without a client row.
    assert refreshed.execute(
        "SELECT count(*) FROM bookings WHERE status <> ALL(%s)", (list(SQUARE_BOOKING_STATUSES),)
    ).fetchone()[0] > 0
    assert one("SELECT count(*) FROM bookings WHERE square_customer_id IS NULL") > 0
    assert one(
        "SELECT count(*) FROM bookings b WHERE status = 'ACCEPTED' AND square_customer_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM square_existing_clients c WHERE c.organization_id = b.organization_id"
        " AND c.square_customer_id = b.square_customer_id)"
    ) > 0
    for status in SQUARE_BOOKING_STATUSES:
        assert one(f"SELECT count(*) FROM bookings WHERE status = '{status}'") > 0, status


# Time zone strings the day rule must get right, beyond the generator's. PostgreSQL's
# AT TIME ZONE accepts several that are not exact IANA names (other case, abbreviations,
# POSIX specs, offsets), so each must give the UTC date.
HAND_MADE_ZONES = [
    "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Chatham",
    "Australia/Lord_Howe", "Etc/GMT+5", "US/Eastern", "EST5EDT", "Factory",
    None, "", "AMERICA/NEW_YORK", "america/new_york", " America/New_York", "America/New_York ",
    "PST", "EST5", "+05:30", "UTC+3", "America/New_York\n",
    # tzdata build copies that pg_timezone_names lists but that are not IANA zone names
    "posix/America/New_York", "right/Europe/London", "posixrules",
]
HAND_MADE_DAYS = ("2026-03-08", "2026-03-29", "2026-10-25", "2026-11-01", "2026-06-15")  # DST changes, summer
HAND_MADE_CLOCKS = ("00:00:00", "00:30:00", "02:30:00", "04:59:59", "05:00:00", "10:14:59", "11:30:00",
                    "12:30:00", "13:45:00", "21:30:00", "23:30:00", "23:59:59")


@pytest.mark.parametrize("zone", HAND_MADE_ZONES)
def test_day_rule_on_hand_made_zones(conn, zone):
    """One location in ``zone``, its id's lower-case twin without a row, and a UTC
    reference location; bookings around every UTC hour that moves a date somewhere."""
    org = "00000000-0000-4000-8000-000000000001"
    conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'hand-made')", (org,))
    conn.execute(
        "INSERT INTO locations (organization_id, square_location_id, name, timezone)"
        " VALUES (%s, 'L-HERE', 'here', %s), (%s, 'L-REF', 'reference', 'UTC')",
        (org, zone, org),
    )
    for customer in ("C-NEW-HERE", "C-NEW-ELSEWHERE", "C-NEVER-ACCEPTED", "C-BOTH"):
        conn.execute(
            "INSERT INTO square_existing_clients (organization_id, square_customer_id, created_at, updated_at)"
            " VALUES (%s, %s, '2025-01-01Z', '2025-01-01Z')",
            (org, customer),
        )
    rows = [("b-ref-1", "C-NEW-ELSEWHERE", "L-REF", "ACCEPTED", "2026-03-07 23:00Z"),
            ("b-both-ref", "C-BOTH", "L-REF", "ACCEPTED", "2026-03-08 02:30Z")]
    n = 0
    for day in HAND_MADE_DAYS:
        for clock in HAND_MADE_CLOCKS:
            at = f"{day} {clock}Z"
            n += 1
            rows += [
                (f"b{n:03d}-new", "C-NEW-HERE", "L-HERE", "ACCEPTED", at),
                (f"b{n:03d}-else", "C-NEW-ELSEWHERE", "L-HERE", ("ACCEPTED", "NO_SHOW")[n % 2], at),
                (f"b{n:03d}-never", "C-NEVER-ACCEPTED", "L-HERE",
                 ("CANCELLED_BY_CUSTOMER", "CANCELLED_BY_SELLER", "accepted", "PENDING")[n % 4], at),
                (f"b{n:03d}-walkin", None, ("L-HERE", "l-here")[n % 2], "ACCEPTED", at),
                (f"b{n:03d}-ghost", "C-NO-CLIENT", "L-HERE", "ACCEPTED", at),
                (f"b{n:03d}-case", "c-new-here", "l-here", "ACCEPTED", at),
            ]
            if n % 3 == 0:  # same instant as its first booking elsewhere, other days too
                rows.append((f"b{n:03d}-both", "C-BOTH", "L-HERE", "ACCEPTED", at))
    rows.append(("b-both-tie", "C-BOTH", "L-HERE", "ACCEPTED", "2026-03-08 02:30Z"))  # 'b-both-r' < 'b-both-t'
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, '2025-01-01Z', '2025-01-01Z')",
            [(org, *row) for row in rows],
        )
    refresh(conn, "full", anchor())
    assert ensure_view(conn) is True

    frames = load_source_frames(conn)
    analytics = expected_customer_analytics(frames, anchor())
    expected = expected_appointments_by_location_daily(frames, analytics)
    assert_view_frames_equal_cellwise(read_appointments_view(conn), expected)
    assert expected["new_customers"].sum() == 3
    here = expected[expected["location_id"] == "L-HERE"]
    utc_days = {row[4][:10] for row in rows if row[2] == "L-HERE"}
    if is_exact_iana_zone(zone) and zone not in ("Factory",):
        assert {str(d) for d in here["day"]} != utc_days  # local dates really differ
    else:
        assert {str(d) for d in here["day"]} == utc_days


# --------------------------------------------------------------------------------------
# installation: idempotent, replaced when outdated
# --------------------------------------------------------------------------------------
def test_ensure_view_creates_once_then_is_a_no_op(conn):
    assert view_definition(conn) is None
    assert ensure_view(conn) is True
    first = view_definition(conn)
    assert first is not None
    assert first[2] == VIEW_COMMENT == installed_view_comment(conn)
    assert first[3] == VIEW_COLUMNS
    assert ensure_view(conn) is False
    assert view_definition(conn) == first  # same oid: not even recreated identically
    assert ensure_view(conn) is False
    assert view_definition(conn) == first


OUTDATED_VIEWS = {
    "old comment": [f"COMMENT ON VIEW {VIEW_NAME} IS 'old'"],
    "no comment": [f"COMMENT ON VIEW {VIEW_NAME} IS NULL"],
    "other columns, no comment": [
        f"DROP VIEW {VIEW_NAME}",
        f"CREATE VIEW {VIEW_NAME} AS SELECT 1 AS old_column",
    ],
    "other columns, old version comment": [
        f"DROP VIEW {VIEW_NAME}",
        f"CREATE VIEW {VIEW_NAME} AS SELECT 'x'::text AS organization_id, 2::bigint AS day, 3 AS old_column",
        f"COMMENT ON VIEW {VIEW_NAME} IS "
        + "'" + VIEW_COMMENT.rsplit(" ", 1)[0] + " 0000000000000000'",
    ],
}


@pytest.mark.parametrize("statements", OUTDATED_VIEWS.values(), ids=OUTDATED_VIEWS.keys())
def test_outdated_view_is_replaced(conn, statements):
    assert ensure_view(conn) is True
    current = view_definition(conn)
    for statement in statements:
        conn.execute(statement)
    outdated = view_definition(conn)
    assert outdated != current
    assert ensure_view(conn) is True
    replaced = view_definition(conn)
    assert replaced[1:] == current[1:]  # same definition, comment and columns
    assert replaced[3] == VIEW_COLUMNS
    assert ensure_view(conn) is False
    conn.execute(f"SELECT * FROM {VIEW_NAME}").fetchall()  # it answers


# --------------------------------------------------------------------------------------
# new_customers adds up
# --------------------------------------------------------------------------------------
def test_each_first_booking_counted_once_in_new_customers(refreshed):
    view_sums = dict(refreshed.execute(
        f"SELECT organization_id::text, sum(new_customers) FROM {VIEW_NAME} GROUP BY 1"
    ).fetchall())
    with_first = dict(refreshed.execute(
        "SELECT organization_id::text, count(*) FROM customer_analytics"
        " WHERE first_booking_at IS NOT NULL GROUP BY 1"
    ).fetchall())
    orgs = organization_ids(refreshed)
    assert sum(with_first.values()) > 0
    assert {org: int(view_sums.get(org) or 0) for org in orgs} == {org: with_first.get(org, 0) for org in orgs}


# --------------------------------------------------------------------------------------
# the dashboard query uses an index on bookings
# --------------------------------------------------------------------------------------
def dashboard_plan(conn, organization_id: str) -> str:
    day = (anchor() - timedelta(days=30)).date()
    rows = conn.execute(
        f"EXPLAIN SELECT * FROM {VIEW_NAME} WHERE organization_id = %s AND day >= %s", (organization_id, day)
    ).fetchall()
    return "\n".join(r[0] for r in rows)


# Many organizations, so that one organization is a small share of ``bookings`` as in
# production. (With the four organizations above the largest holds about 65% of the
# rows, where a sequential scan is the cheaper plan for any view: see the report.)
DASHBOARD_SETTINGS = GeneratorSettings(organizations=40, clients_per_org=120, seed=7)


def test_dashboard_query_uses_an_index_on_bookings(conn):
    generate(conn, DASHBOARD_SETTINGS, progress=lambda message: None)
    refresh(conn, "full", DASHBOARD_SETTINGS.anchor)
    ensure_view(conn)
    conn.execute("ANALYZE")
    shares = dict(conn.execute(
        "SELECT organization_id::text, count(*)::float / sum(count(*)) OVER () FROM bookings GROUP BY 1"
    ).fetchall())
    assert max(shares.values()) < 0.4, shares  # no organization is most of the table
    for organization_id in organization_ids(conn):
        plan = dashboard_plan(conn, organization_id)
        assert "Seq Scan on bookings" not in plan, plan
        assert any(
            ("Index Scan" in line or "Index Only Scan" in line or "Bitmap Index Scan" in line)
            and ("on bookings" in line or "bookings_" in line)
            for line in plan.splitlines()
        ), plan


def test_a_filter_on_several_organizations_reaches_every_table(conn):
    """The view check reads the view for a batch (`organization_id = ANY(...)`): both the
    bookings and customer_analytics are read for those organizations only (no
    scan of the whole customer_analytics per batch)."""
    generate(conn, DASHBOARD_SETTINGS, progress=lambda message: None)
    refresh(conn, "full", DASHBOARD_SETTINGS.anchor)
    ensure_view(conn)
    conn.execute("ANALYZE")
    plan = "\n".join(row[0] for row in conn.execute(
        f"EXPLAIN SELECT organization_id, sum(new_customers) FROM {VIEW_NAME}"
        " WHERE organization_id = ANY(%s::uuid[]) GROUP BY 1", (organization_ids(conn)[:3],)
    ))
    assert "Seq Scan on bookings" not in plan and "Seq Scan on customer_analytics" not in plan, plan
