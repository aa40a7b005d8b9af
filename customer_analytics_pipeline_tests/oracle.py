"""Independent test oracle for ``customer_analytics`` (docs/contract.md, Source tables and customer_analytics).

This module re-implements the contract text in pandas / plain Python, without any
SQL beyond ``SELECT *`` of the source tables, so that tests can compare the table the
pipeline writes with a second, independent computation, cell by cell.

Public API
----------
``load_source_frames(conn)``
    Source tables as DataFrames (timestamps ``datetime64[us, UTC]``, uuids as
    lowercase ``str``, text as ``object`` with ``None`` for NULL).
``expected_customer_analytics(frames, as_of, new_days=30, active_days=90, at_risk_days=180)``
    The expected ``customer_analytics`` content (columns ``COLUMNS``).
``read_customer_analytics(conn, org_ids=None)``
    The actual table, in the same representation.
``assert_frames_equal_cellwise(actual, expected)``
    Raises ``AssertionError`` describing differing cells and missing / extra keys.

Representation of a cell (both expected and actual): tz-aware UTC ``pd.Timestamp`` or
``None``; Python ``int`` or ``None``; ``bool`` for ``is_referrer``; ``str`` or ``None``;
``booking_notes`` as a list of dicts whose ``start_at`` is
``datetime.isoformat()`` of the UTC instant.

Decisions taken where the contract leaves room:
- "Byte order" of ids = order of ``s.encode("utf-8")``.
- A note is empty when it is NULL or ``note.strip(" \\t\\n\\r") == ""`` (so ``""`` is
  empty too: it holds nothing but those characters).
- An ``as_of`` without UTC offset is UTC; a day is ``timedelta(days=1)``.
- ``booking_notes[].start_at`` with a sub-second part is Python's isoformat, i.e. six
  fractional digits (``...T15:00:00.123000+00:00``), never trimmed.
- An empty-string technician / service variation id is a real id (only NULL is absent).
- When reading the actual table an integral ``numeric`` is accepted as the int it holds;
  a ``bool`` column is compared strictly as ``bool``.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "COLUMNS",
    "KEY",
    "SOURCE_TABLES",
    "load_source_frames",
    "expected_customer_analytics",
    "read_customer_analytics",
    "assert_frames_equal_cellwise",
    "avg_ticket_cents",
    "is_empty_note",
]

SOURCE_TABLES = (
    "organizations",
    "locations",
    "square_existing_clients",
    "bookings",
    "payments",
    "referral_profiles",
)

KEY = ["organization_id", "square_customer_id"]

COLUMNS = [
    "organization_id",
    "square_customer_id",
    "given_name",
    "family_name",
    "email_address",
    "phone_number",
    "first_booking_at",
    "first_booking_id",
    "first_booking_location_id",
    "last_booking_at",
    "last_payment_at",
    "total_accepted_bookings",
    "total_cancelled_by_customer",
    "total_cancelled_by_seller",
    "total_no_shows",
    "total_revenue_cents",
    "total_tips_cents",
    "total_payments",
    "avg_ticket_cents",
    "booking_notes",
    "preferred_technician_id",
    "preferred_service_variation_id",
    "distinct_locations",
    "is_referrer",
    "activated_as_referrer_at",
    "referral_source",
    "total_referrals",
    "total_rewards_cents",
    "customer_segment",
]

TIMESTAMP_COLUMNS = {
    "first_booking_at",
    "last_booking_at",
    "last_payment_at",
    "activated_as_referrer_at",
}

# Booking statuses counted into the four count columns (case-sensitive, exact).
_BOOKING_COUNT_COLUMN = {
    "ACCEPTED": "total_accepted_bookings",
    "CANCELLED_BY_CUSTOMER": "total_cancelled_by_customer",
    "CANCELLED_BY_SELLER": "total_cancelled_by_seller",
    "NO_SHOW": "total_no_shows",
}
_ACCEPTED = "ACCEPTED"
_COMPLETED = "COMPLETED"

# Exactly U+0020, U+0009, U+000A, U+000D (str.strip() with no argument strips more).
_NOTE_BLANKS = " \t\n\r"

# PostgreSQL type OIDs that need conversion when reading.
_OID_UUID = 2950
_OID_TIMESTAMPTZ = 1184
_OID_TIMESTAMP = 1114
_OID_JSON = 114
_OID_JSONB = 3802
_OID_NUMERIC = 1700
_TS_DTYPE = "datetime64[us, UTC]"


# --------------------------------------------------------------------------------------
# small value helpers
# --------------------------------------------------------------------------------------
def _is_null(x: Any) -> bool:
    """True for None / NaN / NaT / pd.NA (anything pandas treats as missing)."""
    if x is None:
        return True
    if type(x) in (str, int, bool, list, dict):  # fast path for the common cases
        return False
    if isinstance(x, (list, dict, tuple, set)):
        return False
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _text(x: Any) -> str | None:
    """Normalise a text cell: None for missing, str otherwise."""
    return None if _is_null(x) else str(x)


def _uuid_text(x: Any) -> str | None:
    return None if _is_null(x) else str(x).lower()


def _ts(x: Any) -> pd.Timestamp | None:
    """Normalise a timestamp cell to a tz-aware UTC pd.Timestamp (naive = UTC)."""
    if _is_null(x):
        return None
    t = pd.Timestamp(x)
    if t.tzinfo is None:
        return t.tz_localize("UTC")
    return t.tz_convert("UTC")


def _int(x: Any) -> int | None:
    if _is_null(x):
        return None
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, decimal.Decimal):
        if x == x.to_integral_value():
            return int(x)
        raise ValueError(f"non-integral value {x!r}")
    if isinstance(x, float):
        if x.is_integer():
            return int(x)
        raise ValueError(f"non-integral value {x!r}")
    return int(x)


def _id_bytes(s: str) -> bytes:
    """Sort key for "byte order" of ids (UTF-8 bytes, not locale collation)."""
    return s.encode("utf-8")


def is_empty_note(note: Any) -> bool:
    """The contract: empty = NULL, or only U+0020, U+0009, U+000A, U+000D (incl. '')."""
    if _is_null(note):
        return True
    return str(note).strip(_NOTE_BLANKS) == ""


def avg_ticket_cents(total_revenue_cents: int, total_payments: int) -> int | None:
    """revenue / payments rounded half away from zero, exact integer arithmetic."""
    if total_payments == 0:
        return None
    r, n = int(total_revenue_cents), int(total_payments)
    if n < 0:  # cannot happen (a count), but keep the maths honest
        r, n = -r, -n
    q = (2 * abs(r) + n) // (2 * n)  # floor(|r|/n + 1/2)
    return -q if r < 0 else q


def _iso_utc(t: pd.Timestamp) -> str:
    """UTC instant as Python datetime.isoformat(), e.g. 2026-05-20T15:00:00+00:00."""
    d = t.tz_convert("UTC").to_pydatetime(warn=False)
    return d.astimezone(_dt.UTC).isoformat()


def _as_of_utc(as_of: Any) -> pd.Timestamp:
    if isinstance(as_of, str):
        as_of = pd.Timestamp(as_of)
    t = _ts(as_of)
    if t is None:
        raise ValueError("as_of is required")
    return t


# --------------------------------------------------------------------------------------
# 1. reading the source tables
# --------------------------------------------------------------------------------------
def _frame_from_cursor(cur) -> pd.DataFrame:
    """Build a DataFrame from an executed psycopg cursor with our representation."""
    desc = cur.description
    rows = cur.fetchall()
    names = [d.name for d in desc]
    data: dict[str, pd.Series] = {}
    for i, d in enumerate(desc):
        values = [r[i] for r in rows]
        oid = d.type_code
        if oid in (_OID_TIMESTAMPTZ, _OID_TIMESTAMP):
            s = pd.Series([_ts(v) for v in values], dtype=object)
            s = pd.to_datetime(s, utc=True).astype(_TS_DTYPE)
        elif oid == _OID_UUID:
            s = pd.Series([_uuid_text(v) for v in values], dtype=object)
        elif oid in (_OID_JSON, _OID_JSONB):
            s = pd.Series(
                [json.loads(v) if isinstance(v, (str, bytes)) else v for v in values],
                dtype=object,
            )
        elif oid in (20, 21, 23):  # int8, int2, int4
            if all(v is not None for v in values):
                s = pd.Series(values, dtype="int64")
            else:
                s = pd.Series(values, dtype=object)
        else:
            s = pd.Series(values, dtype=object)
        data[names[i]] = s
    df = pd.DataFrame(data, columns=names)
    return df


def load_source_frames(conn) -> dict[str, pd.DataFrame]:
    """``SELECT *`` of every source table into DataFrames.

    Timestamps are ``datetime64[us, UTC]`` (NaT for NULL); uuid columns are lowercase
    ``str``; integers are ``int64`` (``object`` with None if the column has NULLs);
    everything else is ``object`` with ``None`` for NULL (so '' and NULL stay
    distinct). The connection's transaction state is left as it was found when the
    connection is in autocommit mode; otherwise a read transaction is left open /
    continued, which the caller owns.
    """
    frames: dict[str, pd.DataFrame] = {}
    with conn.cursor() as cur:
        for table in SOURCE_TABLES:
            cur.execute(f'SELECT * FROM "{table}"')
            frames[table] = _frame_from_cursor(cur)
    return frames


# --------------------------------------------------------------------------------------
# 2. the expected customer_analytics
# --------------------------------------------------------------------------------------
class _Acc:
    """Per-customer accumulator."""

    __slots__ = (
        "counts",
        "accepted",
        "notes",
        "revenue",
        "tips",
        "n_payments",
        "last_payment_at",
    )

    def __init__(self) -> None:
        self.counts = {c: 0 for c in _BOOKING_COUNT_COLUMN.values()}
        # accepted bookings: (start_at, id, location_id, technician_id, service_variation_id)
        self.accepted: list[tuple] = []
        # notes: (start_at, id, customer_note, seller_note)
        self.notes: list[tuple] = []
        self.revenue = 0
        self.tips = 0
        self.n_payments = 0
        self.last_payment_at: pd.Timestamp | None = None


def _preferred(accepted: list[tuple], idx: int) -> str | None:
    """Most accepted bookings; tie -> latest latest-accepted-booking; tie -> smallest id bytes."""
    stats: dict[str, list] = {}
    for b in accepted:
        v = b[idx]
        if v is None:
            continue
        st = stats.get(v)
        if st is None:
            stats[v] = [1, b[0]]
        else:
            st[0] += 1
            if b[0] > st[1]:
                st[1] = b[0]
    if not stats:
        return None
    ids = sorted(stats, key=_id_bytes)  # ascending byte order ...
    # ... then a stable descending sort on (count, latest) keeps the byte order for ties.
    ids = sorted(ids, key=lambda v: (stats[v][0], stats[v][1]), reverse=True)
    return ids[0]


def _segment(first_at, last_at, as_of, new_days, active_days, at_risk_days) -> str:
    if first_at is not None and first_at >= as_of - _dt.timedelta(days=new_days):
        return "NEW"
    if last_at is not None and last_at >= as_of - _dt.timedelta(days=active_days):
        return "ACTIVE"
    if last_at is not None and last_at >= as_of - _dt.timedelta(days=at_risk_days):
        return "AT_RISK"
    return "LOST"


def _records(df: pd.DataFrame, cols: Iterable[str]):
    """Iterate rows of ``df[cols]`` as tuples (fast itertuples, no index)."""
    cols = list(cols)
    if len(df) == 0:
        return iter(())
    return df[cols].itertuples(index=False, name=None)


def expected_customer_analytics(
    frames: dict[str, pd.DataFrame],
    as_of,
    new_days: float = 30,
    active_days: float = 90,
    at_risk_days: float = 180,
) -> pd.DataFrame:
    """Compute docs/contract.md, customer_analytics, for every ``square_existing_clients`` row.

    ``created_at`` / ``updated_at`` of ``customer_analytics`` are not part of the
    result (they depend on refresh history, not on the source data).
    """
    as_of_t = _as_of_utc(as_of)

    # ---- clients: one output row each -------------------------------------------------
    clients = frames["square_existing_clients"]
    acc: dict[tuple[str, str], _Acc] = {}
    client_rows: list[tuple] = []
    for org, cust, gn, fn, em, ph in _records(
        clients,
        ["organization_id", "square_customer_id", "given_name", "family_name",
         "email_address", "phone_number"],
    ):
        key = (_uuid_text(org), _text(cust))
        if key in acc:
            raise ValueError(f"duplicate client key {key}")
        acc[key] = _Acc()
        client_rows.append((key, _text(gn), _text(fn), _text(em), _text(ph)))

    # ---- bookings -----------------------------------------------------------------------
    for org, bid, cust, loc, status, start_at, tech, svc, cnote, snote in _records(
        frames["bookings"],
        ["organization_id", "id", "square_customer_id", "location_id", "status",
         "start_at", "technician_id", "service_variation_id", "customer_note",
         "seller_note"],
    ):
        cust = _text(cust)
        if cust is None:
            continue  # unknown customer: counts nowhere
        a = acc.get((_uuid_text(org), cust))
        if a is None:
            continue  # no client row: counts nowhere
        status = _text(status)
        start_at = _ts(start_at)
        bid = _text(bid)
        col = _BOOKING_COUNT_COLUMN.get(status)
        if col is not None:
            a.counts[col] += 1
        if status == _ACCEPTED:
            a.accepted.append((start_at, bid, _text(loc), _text(tech), _text(svc)))
        cnote, snote = _text(cnote), _text(snote)
        # booking_notes: any status
        if not is_empty_note(cnote) or not is_empty_note(snote):
            a.notes.append((start_at, bid, cnote, snote))

    # ---- payments -----------------------------------------------------------------------
    for org, cust, status, amount, tip, refunded, created_at in _records(
        frames["payments"],
        ["organization_id", "square_customer_id", "status", "amount_cents",
         "tip_cents", "refunded_cents", "created_at"],
    ):
        cust = _text(cust)
        if cust is None:
            continue
        a = acc.get((_uuid_text(org), cust))
        if a is None:
            continue
        if _text(status) != _COMPLETED:
            continue
        a.revenue += _int(amount) - _int(refunded)
        a.tips += _int(tip)
        a.n_payments += 1
        created_at = _ts(created_at)
        if a.last_payment_at is None or created_at > a.last_payment_at:
            a.last_payment_at = created_at

    # ---- referral profiles --------------------------------------------------------------
    referral: dict[tuple[str, str], tuple] = {}
    for org, cust, activated_at, source, n_ref, rewards in _records(
        frames["referral_profiles"],
        ["organization_id", "square_customer_id", "activated_at", "referral_source",
         "total_referrals", "total_rewards_cents"],
    ):
        key = (_uuid_text(org), _text(cust))
        if key in acc:
            referral[key] = (_ts(activated_at), _text(source), _int(n_ref), _int(rewards))

    # ---- assemble ------------------------------------------------------------------------
    out: list[dict[str, Any]] = []
    for key, gn, fn, em, ph in client_rows:
        a = acc[key]
        row: dict[str, Any] = {
            "organization_id": key[0],
            "square_customer_id": key[1],
            "given_name": gn,
            "family_name": fn,
            "email_address": em,
            "phone_number": ph,
        }
        if a.accepted:
            first = min(a.accepted, key=lambda b: (b[0], _id_bytes(b[1])))
            row["first_booking_at"] = first[0]
            row["first_booking_id"] = first[1]
            row["first_booking_location_id"] = first[2]
            row["last_booking_at"] = max(b[0] for b in a.accepted)
        else:
            row["first_booking_at"] = None
            row["first_booking_id"] = None
            row["first_booking_location_id"] = None
            row["last_booking_at"] = None
        row["last_payment_at"] = a.last_payment_at
        row.update(a.counts)
        row["total_revenue_cents"] = a.revenue
        row["total_tips_cents"] = a.tips
        row["total_payments"] = a.n_payments
        row["avg_ticket_cents"] = avg_ticket_cents(a.revenue, a.n_payments)
        notes = sorted(a.notes, key=lambda n: (n[0], _id_bytes(n[1])))
        row["booking_notes"] = [
            {
                "booking_id": bid,
                "start_at": _iso_utc(start_at),
                "customer_note": cnote,
                "seller_note": snote,
            }
            for start_at, bid, cnote, snote in notes
        ]
        row["preferred_technician_id"] = _preferred(a.accepted, 3)
        row["preferred_service_variation_id"] = _preferred(a.accepted, 4)
        row["distinct_locations"] = len({b[2] for b in a.accepted})
        ref = referral.get(key)
        if ref is None:
            row["is_referrer"] = False
            row["activated_as_referrer_at"] = None
            row["referral_source"] = None
            row["total_referrals"] = 0
            row["total_rewards_cents"] = 0
        else:
            activated_at, source, n_ref, rewards = ref
            row["is_referrer"] = activated_at is not None
            row["activated_as_referrer_at"] = activated_at
            row["referral_source"] = source
            row["total_referrals"] = n_ref
            row["total_rewards_cents"] = rewards
        row["customer_segment"] = _segment(
            row["first_booking_at"], row["last_booking_at"], as_of_t,
            new_days, active_days, at_risk_days,
        )
        out.append(row)

    out.sort(key=lambda r: (_id_bytes(r["organization_id"]), _id_bytes(r["square_customer_id"])))
    return _object_frame(out)


def _object_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """DataFrame with every column ``object`` dtype (keeps None, int, Timestamp as is)."""
    df = pd.DataFrame(
        {c: pd.Series([r[c] for r in records], dtype=object) for c in COLUMNS},
        columns=COLUMNS,
    )
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# 3. reading the actual table and comparing
# --------------------------------------------------------------------------------------
_INT_COLUMNS = {
    "total_accepted_bookings",
    "total_cancelled_by_customer",
    "total_cancelled_by_seller",
    "total_no_shows",
    "total_revenue_cents",
    "total_tips_cents",
    "total_payments",
    "avg_ticket_cents",
    "distinct_locations",
    "total_referrals",
    "total_rewards_cents",
}


def _normalise_cell(col: str, v: Any) -> Any:
    """Bring a cell into the oracle's representation (used for actual and expected)."""
    if col == "booking_notes":
        if isinstance(v, (str, bytes)):
            v = json.loads(v)
        return v if not _is_null(v) else None
    if _is_null(v):
        return None
    if col in TIMESTAMP_COLUMNS:
        return _ts(v)
    if col == "organization_id":
        return _uuid_text(v)
    if col == "is_referrer":
        # keep non-bool values as they are so a wrong type shows up as a difference
        return bool(v) if type(v).__name__ in ("bool", "bool_") else v
    if col in _INT_COLUMNS:
        try:
            return _int(v)
        except (TypeError, ValueError):
            return v  # non-integral: leave it, it will be reported
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


def fetch_normalised_records(conn, select_sql: str, org_ids,
                             normalise: Callable[[str, Any], Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and rows of ``select_sql`` (optionally restricted to ``org_ids``) as normalised dicts."""
    params: tuple = ()
    if org_ids is not None:
        select_sql += " WHERE organization_id::text = ANY(%s)"
        params = ([str(o).lower() for o in org_ids],)
    with conn.cursor() as cur:
        cur.execute(select_sql, params)
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
    return names, [{c: normalise(c, v) for c, v in zip(names, r, strict=True)} for r in rows]


def read_customer_analytics(conn, org_ids=None) -> pd.DataFrame:
    """Read ``customer_analytics`` (the COLUMNS only) in the oracle's representation.

    ``org_ids``: optional iterable of organization ids (str or UUID) to restrict to.
    Rows are sorted by organization_id, square_customer_id in byte order.
    """
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    _, records = fetch_normalised_records(conn, f"SELECT {cols} FROM customer_analytics", org_ids, _normalise_cell)
    records.sort(
        key=lambda r: (_id_bytes(r["organization_id"]), _id_bytes(r["square_customer_id"]))
    )
    return _object_frame(records)


def _cells_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is bool and type(b) is bool and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        eq = a == b
        if isinstance(eq, bool):
            return eq
        return bool(eq)
    except (TypeError, ValueError):
        return False


def _keyed_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as normalised dicts, sorted by key in byte order."""
    cols = list(df.columns)
    records = []
    for values in df.itertuples(index=False, name=None):
        records.append({
            c: (_normalise_cell(c, v) if c in COLUMNS else v) for c, v in zip(cols, values, strict=True)
        })
    records.sort(
        key=lambda r: (_id_bytes(str(r["organization_id"])),
                       _id_bytes(str(r["square_customer_id"])))
    )
    return records


def assert_records_equal_cellwise(actual: list[dict[str, Any]], expected: list[dict[str, Any]],
                                  key: Sequence[str], columns: Sequence[str], label: str,
                                  cells_equal: Callable[[Any, Any], bool] = None,
                                  max_diffs: int = 20) -> None:
    """Compare two lists of row dicts on ``key``, cell by cell over ``columns``.

    Raises AssertionError listing missing columns, missing / extra / duplicate keys and
    up to ``max_diffs`` differing cells as (key, column, actual, expected).
    """
    cells_equal = cells_equal or _cells_equal
    problems: list[str] = []
    actual_columns = set(actual[0]) if actual else set(columns)
    missing_cols = [c for c in columns if c not in actual_columns]
    if missing_cols:
        problems.append(f"columns missing from actual: {missing_cols}")

    def index(records: list[dict[str, Any]], side: str) -> dict:
        out: dict = {}
        dups = []
        for r in records:
            k = tuple(r[c] for c in key)
            if k in out:
                dups.append(k)
            out[k] = r
        if dups:
            problems.append(f"duplicate keys in {side} ({len(dups)}): {dups[:20]}")
        return out

    ai, ei = index(actual, "actual"), index(expected, "expected")
    missing = [k for k in ei if k not in ai]
    extra = [k for k in ai if k not in ei]
    if missing:
        problems.append(f"keys missing from actual ({len(missing)}): {missing[:20]}")
    if extra:
        problems.append(f"extra keys in actual ({len(extra)}): {extra[:20]}")

    common_cols = [c for c in columns if c in actual_columns and c not in key]
    diffs: list[tuple] = []
    n_diffs = 0
    for k, e_row in ei.items():
        a_row = ai.get(k)
        if a_row is None:
            continue
        for c in common_cols:
            av, ev = a_row[c], e_row[c]
            if not cells_equal(av, ev):
                n_diffs += 1
                if len(diffs) < max_diffs:
                    diffs.append((k, c, av, ev))
    if n_diffs:
        lines = [f"{n_diffs} differing cells (showing {len(diffs)}):"]
        lines += [f"  {k} {c}: actual={a!r} expected={e!r}" for k, c, a, e in diffs]
        problems.append("\n".join(lines))
    if problems:
        raise AssertionError(f"{label} differs from the oracle:\n" + "\n".join(problems))


def assert_frames_equal_cellwise(actual: pd.DataFrame, expected: pd.DataFrame,
                                 max_diffs: int = 20) -> None:
    """Compare customer_analytics frames on key (organization_id, square_customer_id)."""
    for c in KEY:
        if c not in actual.columns or c not in expected.columns:
            raise AssertionError(f"key column {c!r} absent")
    assert_records_equal_cellwise(_keyed_records(actual), _keyed_records(expected), KEY,
                                  list(expected.columns), "customer_analytics", max_diffs=max_diffs)
