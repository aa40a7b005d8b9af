"""Independent test oracle for the ``analytics_appointments_by_location_daily`` view
(docs/contract.md, The daily appointments view).

Recomputes the view from the source frames of :func:`oracle.load_source_frames` and
the expected ``customer_analytics`` of :func:`oracle.expected_customer_analytics`, in
pandas / plain Python, written from the contract's text alone (not from the view's SQL).

Public API
----------
``local_day(start_at, timezone_name)``
    The contract's "day" of one instant for a location's ``timezone`` (None: no row / NULL).
``expected_appointments_by_location_daily(frames, customer_analytics)``
    The expected view content (columns ``VIEW_COLUMNS``), sorted by key.
``read_appointments_view(conn, org_ids=None)``
    The actual view, in the same representation, sorted by key.
``assert_view_frames_equal_cellwise(actual, expected)``
    Raises ``AssertionError`` describing differing cells and missing / extra keys.

Representation of a cell (expected and actual): ``organization_id`` lowercase ``str``;
``location_id`` ``str``; ``day`` ``datetime.date``; counts Python ``int``.

Decisions taken where the contract leaves room:
- "Exact IANA zone name" = a member of ``zoneinfo.available_timezones()``, compared
  case-sensitively ('america/new_york' and '' are not zone names). Local dates are
  computed with ``zoneinfo.ZoneInfo`` (the system / tzdata database).
- The zone of a booking's location is looked up by ``(organization_id, location_id)``
  exactly (a location id in another case has no ``locations`` row).
- ``new_customers`` uses the zone of ``first_booking_location_id`` (the same day rule as
  the bookings), and counts rows of ``customer_analytics`` with a ``first_booking_at``.
- ``returning_customers`` = |{known clients with an ACCEPTED booking at (org, location,
  day)} minus {customers new at (org, location, day)}|; a known client is a
  ``square_existing_clients`` row matched on organization and exact customer id.
- A (org, location, day) of a new customer that has no booking in the source (only
  possible with a stale ``customer_analytics``) is not a view row.
"""

from __future__ import annotations

import datetime as _dt
import functools
import zoneinfo
from collections import defaultdict
from typing import Any

import pandas as pd

from customer_analytics_pipeline_tests.oracle import (
    _cells_equal,
    _id_bytes,
    _int,
    _is_null,
    _text,
    _ts,
    _uuid_text,
    assert_records_equal_cellwise,
    fetch_normalised_records,
)

__all__ = [
    "VIEW_NAME",
    "VIEW_KEY",
    "VIEW_COUNT_COLUMNS",
    "VIEW_COLUMNS",
    "is_exact_iana_zone",
    "local_day",
    "location_zones",
    "expected_appointments_by_location_daily",
    "read_appointments_view",
    "assert_view_frames_equal_cellwise",
]

VIEW_NAME = "analytics_appointments_by_location_daily"
VIEW_KEY = ["organization_id", "location_id", "day"]
VIEW_COUNT_COLUMNS = [
    "total_appointments",
    "accepted_appointments",
    "cancelled_appointments",
    "no_shows",
    "new_customers",
    "returning_customers",
]
VIEW_COLUMNS = VIEW_KEY + VIEW_COUNT_COLUMNS

_ACCEPTED = "ACCEPTED"
_CANCELLED = frozenset({"CANCELLED_BY_CUSTOMER", "CANCELLED_BY_SELLER"})
_NO_SHOW = "NO_SHOW"


# --------------------------------------------------------------------------------------
# the day rule
# --------------------------------------------------------------------------------------
@functools.cache
def _available_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_exact_iana_zone(name: Any) -> bool:
    """True when ``name`` is exactly (case-sensitively) an IANA zone name."""
    return isinstance(name, str) and name in _available_zones()


@functools.cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_day(start_at: Any, timezone_name: Any) -> _dt.date:
    """The contract (The daily appointments view): the local date of ``start_at`` in
    ``timezone_name`` when that is an exact IANA name, else (no location row = None, NULL,
    invalid, wrong case) the UTC date."""
    t = _ts(start_at)
    if t is None:
        raise ValueError("start_at is NOT NULL in the source")
    utc = t.to_pydatetime(warn=False).astimezone(_dt.UTC)
    if is_exact_iana_zone(timezone_name):
        return utc.astimezone(_zone(timezone_name)).date()
    return utc.date()


def location_zones(frames: dict[str, pd.DataFrame]) -> dict[tuple[str, str], str | None]:
    """(organization_id, square_location_id) -> timezone (None when NULL)."""
    out: dict[tuple[str, str], str | None] = {}
    locs = frames["locations"]
    if len(locs):
        for org, loc, tz in locs[["organization_id", "square_location_id", "timezone"]].itertuples(
            index=False, name=None
        ):
            out[(_uuid_text(org), _text(loc))] = _text(tz)
    return out


# --------------------------------------------------------------------------------------
# the expected view
# --------------------------------------------------------------------------------------
def _sort_key(org: str, loc: str, day: _dt.date) -> tuple:
    return (_id_bytes(org), _id_bytes(loc), day)


def expected_appointments_by_location_daily(
    frames: dict[str, pd.DataFrame], customer_analytics: pd.DataFrame
) -> pd.DataFrame:
    """Compute docs/contract.md, The daily appointments view, from the source frames and ``customer_analytics``."""
    zones = location_zones(frames)

    def day_of(org: str, loc: str, start_at) -> _dt.date:
        # A missing row gives None, which is not a zone name: the UTC date.
        return local_day(start_at, zones.get((org, loc)))

    clients = frames["square_existing_clients"]
    known: set[tuple[str, str]] = set()
    if len(clients):
        known = {
            (_uuid_text(o), _text(c))
            for o, c in clients[["organization_id", "square_customer_id"]].itertuples(index=False, name=None)
        }

    # ---- one row per booking, with its day (pandas for the counting) ------------------
    b = frames["bookings"]
    rows = []
    if len(b):
        for org, loc, cust, status, start_at in b[
            ["organization_id", "location_id", "square_customer_id", "status", "start_at"]
        ].itertuples(index=False, name=None):
            org, loc, cust, status = _uuid_text(org), _text(loc), _text(cust), _text(status)
            rows.append((org, loc, day_of(org, loc, start_at), cust, status))
    bk = pd.DataFrame(
        {
            name: pd.Series([r[i] for r in rows], dtype=object)
            for i, name in enumerate(["organization_id", "location_id", "day", "customer", "status"])
        }
    )
    bk["is_accepted"] = (bk["status"] == _ACCEPTED).astype("int64")
    bk["is_cancelled"] = bk["status"].isin(list(_CANCELLED)).astype("int64")
    bk["is_no_show"] = (bk["status"] == _NO_SHOW).astype("int64")

    counts: dict[tuple, dict[str, int]] = {}
    if len(bk):
        grouped = bk.groupby(VIEW_KEY, sort=False, dropna=False).agg(
            total_appointments=("status", "size"),
            accepted_appointments=("is_accepted", "sum"),
            cancelled_appointments=("is_cancelled", "sum"),
            no_shows=("is_no_show", "sum"),
        )
        for key, r in grouped.iterrows():
            counts[tuple(key)] = {c: int(r[c]) for c in grouped.columns}

    # ---- new customers: from customer_analytics --------------------------------------
    new_at: dict[tuple, set[str]] = defaultdict(set)
    if len(customer_analytics):
        for org, cust, first_at, first_loc in customer_analytics[
            ["organization_id", "square_customer_id", "first_booking_at", "first_booking_location_id"]
        ].itertuples(index=False, name=None):
            if _is_null(first_at):
                continue
            org, cust, first_loc = _uuid_text(org), _text(cust), _text(first_loc)
            new_at[(org, first_loc, day_of(org, first_loc, first_at))].add(cust)

    # ---- returning: distinct known clients with an accepted booking, less the new ------
    accepted_customers: dict[tuple, set[str]] = defaultdict(set)
    for org, loc, day, cust, status in rows:
        if status == _ACCEPTED and cust is not None and (org, cust) in known:
            accepted_customers[(org, loc, day)].add(cust)

    out = []
    for key, c in counts.items():
        new = new_at.get(key, set())
        returning = accepted_customers.get(key, set()) - new
        out.append({
            "organization_id": key[0],
            "location_id": key[1],
            "day": key[2],
            **c,
            "new_customers": len(new),
            "returning_customers": len(returning),
        })
    out.sort(key=lambda r: _sort_key(r["organization_id"], r["location_id"], r["day"]))
    return _object_frame(out, VIEW_COLUMNS)


def _object_frame(records: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Every column ``object`` dtype, so int / date / None cells are kept as they are."""
    return pd.DataFrame(
        {c: pd.Series([r.get(c) for r in records], dtype=object) for c in columns},
        columns=columns,
    ).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# reading the actual view and comparing
# --------------------------------------------------------------------------------------
def _normalise_cell(col: str, v: Any) -> Any:
    if _is_null(v):
        return None
    if col == "organization_id":
        return _uuid_text(v)
    if col == "location_id":
        return _text(v)
    if col == "day":
        # keep a datetime / Timestamp as it is: a date column is required, so any other
        # type shows up as a difference instead of being silently converted.
        return v
    if col in VIEW_COUNT_COLUMNS:
        try:
            return _int(v)
        except (TypeError, ValueError):
            return v
    return v


def read_appointments_view(conn, org_ids=None) -> pd.DataFrame:
    """``SELECT *`` of the view (every column it has), normalised and sorted by key."""
    names, records = fetch_normalised_records(conn, f"SELECT * FROM {VIEW_NAME}", org_ids, _normalise_cell)
    records.sort(key=lambda r: (
        _id_bytes(str(r.get("organization_id"))), _id_bytes(str(r.get("location_id"))), str(r.get("day"))
    ))
    return _object_frame(records, names)


def assert_view_frames_equal_cellwise(actual: pd.DataFrame, expected: pd.DataFrame, max_diffs: int = 20) -> None:
    """Compare on key (organization_id, location_id, day), cell by cell; a cell must also
    have the expected Python type (an int count, a date day)."""
    def records(df: pd.DataFrame) -> list[dict[str, Any]]:
        cols = list(df.columns)
        return [{c: _normalise_cell(c, v) for c, v in zip(cols, values, strict=True)}
                for values in df.itertuples(index=False, name=None)]

    def same_value_and_type(av: Any, ev: Any) -> bool:
        return _cells_equal(av, ev) and (av is None or type(av) is type(ev))

    assert_records_equal_cellwise(records(actual), records(expected), VIEW_KEY, list(expected.columns),
                                  VIEW_NAME, cells_equal=same_value_and_type, max_diffs=max_diffs)
