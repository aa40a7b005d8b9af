"""Deterministic synthetic source data for the demo, the tests and load tests.

Fills the application's source tables (docs/contract.md, Source tables) with skewed, realistic rows plus
the edge cases the analytics rules most easily get wrong: ties broken by byte order,
whitespace-only notes, daylight-saving days, unknown customers, invalid time zones,
over-refunds, half-cent averages. Everything derives from ``GeneratorSettings.seed``:
the same settings give the same rows and ids, and different seeds give different
organization ids, so several seeds can share one database.

Rows are made per organization, in chunks of clients drawn with numpy and bulk-loaded
with COPY, so memory stays flat from a handful of rows to millions. The chunk size is
part of the recipe: changing ``CHUNK_CLIENTS`` changes the data a seed produces.
"""

import argparse
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from functools import cache
from itertools import repeat
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg import sql

DEFAULT_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FUTURE_DAYS = 60
# Daylight-saving edge cases look this far ahead of ``now`` (beyond the ordinary
# bookings' 60 days) so that the next autumn change, e.g. 2026-11-01, is included.
DST_HORIZON_DAYS = 184
CHUNK_CLIENTS = 10_000

MINUTE = 60
HOUR = 3_600
DAY = 86_400

TABLE_COLUMNS = {
    "organizations": ("id", "name", "created_at"),
    "locations": ("organization_id", "square_location_id", "name", "timezone"),
    "square_existing_clients": (
        "organization_id", "square_customer_id", "given_name", "family_name",
        "email_address", "phone_number", "created_at", "updated_at",
    ),
    "bookings": (
        "organization_id", "id", "square_customer_id", "location_id", "status", "start_at",
        "technician_id", "service_variation_id", "customer_note", "seller_note",
        "created_at", "updated_at",
    ),
    "payments": (
        "organization_id", "id", "square_customer_id", "location_id", "booking_id", "status",
        "amount_cents", "tip_cents", "refunded_cents", "created_at", "updated_at",
    ),
    "referral_profiles": (
        "organization_id", "square_customer_id", "referral_code", "activated_at",
        "referral_source", "total_referrals", "total_rewards_cents", "created_at", "updated_at",
    ),
}
ORGANIZATION_TABLES = tuple(table for table in TABLE_COLUMNS if table not in ("organizations", "locations"))

# Every organization has New York and London locations, so the US and UK
# daylight-saving edge cases exist everywhere; up to four more zones are drawn from here.
HOME_ZONES = ("America/New_York", "Europe/London")
OTHER_ZONES = (
    "America/Los_Angeles", "America/Chicago", "Australia/Sydney", "Asia/Kolkata",
    "Europe/Berlin", "Asia/Kathmandu", "Pacific/Auckland",
)
ZONE_CITIES = {
    "America/New_York": "Brooklyn", "Europe/London": "Shoreditch", "America/Los_Angeles": "Silver Lake",
    "America/Chicago": "Wicker Park", "Australia/Sydney": "Surry Hills", "Asia/Kolkata": "Indiranagar",
    "Europe/Berlin": "Kreuzberg", "Asia/Kathmandu": "Thamel", "Pacific/Auckland": "Ponsonby",
}
# Locations whose zone the view must treat as UTC (NULL, not an exact IANA name). Bookings
# also point at UNLISTED_LOCATION_ID and at a real location id in lower case: no row.
ODD_LOCATIONS = (
    ("L-EDGE-NO-TZ", "Pop-up (no time zone)", None),
    ("L-EDGE-MARS", "Olympus Mons outpost", "Mars/Olympus"),
    ("L-EDGE-WRONG-CASE", "Midtown (mis-cased zone)", "america/new_york"),
    ("L-EDGE-EMPTY-TZ", None, ""),
)
UNLISTED_LOCATION_ID = "L-EDGE-UNLISTED"

# 32 symbols each, in byte order, so that ids sort like the numbers they encode.
CUSTOMER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BOOKING_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
PAYMENT_ALPHABET = "0123456789ABCDEFGHJKabcdefghjkmn"
ID_WIDTH = 12  # symbols of 5 bits: a 20-bit random prefix, then a 40-bit sequence number
ID_PREFIX_BITS, ID_SEQUENCE_BITS = 20, 40

PARETO_ALPHA = 1.16  # the 80/20 rule: a few large organizations, many small ones
NO_BOOKING_SHARE, OCCASIONAL_SHARE, REGULAR_SHARE = 0.08, 0.52, 0.40
OTHER_LOCATION_SHARE = 0.15
ODD_LOCATION_SHARE = 0.015
EDGE_INSTANT_SHARE = 0.002
UNKNOWN_CUSTOMER_SHARE = 0.02
NON_SQUARE_STATUS_SHARE = 0.002
RECENT_TOUCH_SHARE = 0.03
CLOCK_SKEW_SHARE = 0.0005
OPENING_SECONDS, SLOT_SECONDS, SLOTS_PER_DAY = 8 * HOUR, 15 * MINUTE, 48

PAST_BOOKING_STATUSES = {
    "ACCEPTED": 0.80, "CANCELLED_BY_CUSTOMER": 0.08, "CANCELLED_BY_SELLER": 0.03,
    "NO_SHOW": 0.04, "DECLINED": 0.03, "PENDING": 0.02,
}
FUTURE_BOOKING_STATUSES = {
    "ACCEPTED": 0.84, "PENDING": 0.10, "CANCELLED_BY_CUSTOMER": 0.04,
    "CANCELLED_BY_SELLER": 0.01, "DECLINED": 0.01,
}
NON_SQUARE_BOOKING_STATUSES = ("accepted", "UNKNOWN", "Accepted", "ACCEPTED ")
PAYMENT_STATUSES = {"COMPLETED": 0.90, "APPROVED": 0.025, "PENDING": 0.02, "CANCELED": 0.025, "FAILED": 0.03}
NON_SQUARE_PAYMENT_STATUSES = ("completed", "REFUNDED")

# Empty per the contract: NULL, or only U+0020, U+0009, U+000A, U+000D. Not empty: U+00A0,
# U+2003, vertical tab and form feed, although many trim functions strip them.
EMPTY_NOTES = ("", " ", "\t", "\n", "\r\n ")
NOT_EMPTY_BLANKS = ("\u00a0", "\u2003", "\x0b\x0c")
CUSTOMER_NOTE_TEXTS = (
    "Running 10 minutes late", "Prefers a quiet room", "First visit, referred by a friend",
    "Patch test done ✅", 'Said "see you soon"', "Back\\slash in the note",
    "Two lines\nof text", "  padded with spaces  ", "Zoë’s sister, 日本語 OK",
)
SELLER_NOTE_TEXTS = (
    "Paid deposit", "Use the gentle shampoo", "VIP", "No-show twice before",
    "Allergic to latex gloves", "Tab-separated\tnote",
)
CUSTOMER_NOTES = {None: 0.70, **dict.fromkeys(EMPTY_NOTES, 0.016), **dict.fromkeys(NOT_EMPTY_BLANKS, 0.002),
                  **dict.fromkeys(CUSTOMER_NOTE_TEXTS, 0.0184)}
SELLER_NOTES = {None: 0.80, **dict.fromkeys(EMPTY_NOTES, 0.012), "\u00a0": 0.002,
                **dict.fromkeys(SELLER_NOTE_TEXTS, 0.023)}
REFERRAL_SOURCES = {None: 0.35, "": 0.03, "friend": 0.25, "instagram": 0.15, "google": 0.12, "walk_in": 0.10}

SERVICE_PRICES = (2500, 2999, 3500, 4199, 4500, 5500, 6550, 7999, 8500, 9999, 12000, 15050, 18000, 22500)
RETAIL_PRICES = (1299, 1850, 2400, 3175, 4999)
GIVEN_NAMES = (
    ("Ava", "ava"), ("Liam", "liam"), ("Zoë", "zoe"), ("José", "jose"), ("Mia", "mia"), ("Noah", "noah"),
    ("Priya", "priya"), ("Chen", "chen"), ("Fatima", "fatima"), ("Olivia", "olivia"), ("Lucas", "lucas"),
    ("Amara", "amara"), ("Sofia", "sofia"), ("Mateo", "mateo"), ("Hana", "hana"), ("Aoife", "aoife"),
    ("Léa", "lea"), ("Omar", "omar"), ("Kai", "kai"), ("Ethan", "ethan"),
)
FAMILY_NAMES = (
    ("Smith", "smith"), ("García", "garcia"), ("O'Brien", "obrien"), ("Nguyen", "nguyen"), ("Patel", "patel"),
    ("Müller", "muller"), ("Kim", "kim"), ("Johnson", "johnson"), ("Rossi", "rossi"), ("Kowalski", "kowalski"),
    ("Silva", "silva"), ("Tanaka", "tanaka"), ("Okafor", "okafor"), ("Dubois", "dubois"),
    ("van der Berg", "vanderberg"), ("Singh", "singh"), ("Cohen", "cohen"), ("López", "lopez"),
)
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net")
BUSINESS_WORDS = ("Harbor", "Velvet", "Juniper", "Copper", "Lumière", "Maple", "Indigo", "Saffron", "Nordic")
BUSINESS_KINDS = ("Salon", "Barbers", "Day Spa", "Nail Bar", "Studio", "Brow & Lash", "Wellness")


@dataclass(frozen=True)
class GeneratorSettings:
    """How much data to make, and the seed and instant that make it reproducible."""

    organizations: int = 5
    clients_per_org: int = 200  # mean; real distribution skewed: a few large orgs, many small
    seed: int = 42
    now: datetime | None = None  # tz-aware anchor for "past"/"future" and updated_at stamps
    history_days: int = 730  # bookings spread over [now - history_days, now + 60 days]

    def __post_init__(self) -> None:
        if self.organizations < 0 or self.clients_per_org < 0:
            raise ValueError("organizations and clients_per_org must be >= 0")
        if self.history_days < 1:
            raise ValueError("history_days must be >= 1")
        if self.now is not None and self.now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")

    @property
    def anchor(self) -> datetime:
        """``now``, or the fixed default instant (never the wall clock: determinism)."""
        return (self.now or DEFAULT_NOW).astimezone(UTC)


@dataclass(frozen=True)
class _Window:
    """The instants every timestamp is drawn relative to: ``anchor`` exactly (the edge
    cases' boundaries), and in whole epoch seconds for the vectorized draws."""

    anchor: datetime
    now: int
    start: int
    end: int

    @classmethod
    def of(cls, settings: GeneratorSettings) -> "_Window":
        now = int(settings.anchor.timestamp())
        return cls(settings.anchor, now, now - settings.history_days * DAY, now + FUTURE_DAYS * DAY)


@dataclass(frozen=True)
class _Location:
    square_location_id: str
    name: str | None
    timezone: str | None
    listed: bool  # False: bookings point at it, but it has no locations row
    regular: bool  # True: a real shop that ordinary bookings happen at


@dataclass(frozen=True)
class _OrgPlan:
    """Everything about one organization that is drawn up front; its rows are drawn later."""

    index: int
    id: str
    name: str
    created_at: datetime
    client_count: int
    seed: int
    id_prefixes: tuple[int, int, int]  # customers, bookings, payments
    locations: tuple[_Location, ...]  # regular ones first
    technician_ids: tuple[str, ...]
    service_ids: tuple[str, ...]
    service_prices: tuple[int, ...]

    @property
    def regular_locations(self) -> tuple[_Location, ...]:
        return tuple(location for location in self.locations if location.regular)

    def location_id(self, zone: str) -> str:
        """The shop in ``zone`` (every organization has one in New York and in London)."""
        return next(loc.square_location_id for loc in self.locations if loc.timezone == zone and loc.regular)


def generate(
    conn: psycopg.Connection, settings: GeneratorSettings, progress: Callable[[str], None] = print
) -> dict[str, int]:
    """Loads rows into organizations, locations, square_existing_clients, bookings, payments,
    referral_profiles; returns row counts per table.

    One transaction, committed at the end: a failed load leaves nothing behind.
    """
    began = time.perf_counter()
    window = _Window.of(settings)
    plans = _plan_organizations(settings)
    counts = dict.fromkeys(TABLE_COLUMNS, 0)
    with conn.transaction(), conn.cursor() as cur:
        counts["organizations"] = _copy(cur, "organizations", ((p.id, p.name, p.created_at) for p in plans))
        progress(f"organizations: {counts['organizations']:,} rows")
        for plan in plans:
            org_began = time.perf_counter()
            org_counts = _load_organization(cur, plan, window, progress, len(plans))
            for table, count in org_counts.items():
                counts[table] += count
            summary = ", ".join(f"{table} {count:,}" for table, count in org_counts.items())
            progress(f"  org {plan.index + 1}/{len(plans)} done: {summary} [{time.perf_counter() - org_began:.1f}s]")
    if not conn.autocommit:
        conn.commit()
    elapsed = time.perf_counter() - began
    total = sum(counts.values())
    progress(f"loaded {total:,} rows in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} rows/s)")
    return counts


def _load_organization(
    cur: psycopg.Cursor, plan: _OrgPlan, window: _Window, progress: Callable[[str], None], org_total: int
) -> dict[str, int]:
    """Locations, then the regular clients chunk by chunk, then the hand-made edge cases."""
    progress(f"org {plan.index + 1}/{org_total} {plan.id} {plan.name!r}: {plan.client_count:,} clients")
    listed = [(plan.id, loc.square_location_id, loc.name, loc.timezone) for loc in plan.locations if loc.listed]
    counts = {"locations": _copy(cur, "locations", listed), **dict.fromkeys(ORGANIZATION_TABLES, 0)}

    edge_cases = _EdgeCases(plan, window)
    scenario_clients = min(plan.client_count, len(_SCENARIOS))
    for scenario in _SCENARIOS[:scenario_clients]:
        scenario(edge_cases)
    edge_cases.add_unknown_customer_rows()

    regular_clients = plan.client_count - scenario_clients
    instants = _edge_instants(plan, window)
    chunk_count = -(-regular_clients // CHUNK_CLIENTS)
    booking_offset = payment_offset = 0
    for chunk_index in range(chunk_count):
        first = chunk_index * CHUNK_CLIENTS
        size = min(CHUNK_CLIENTS, regular_clients - first)
        chunk = _ClientChunk(plan, window, instants, chunk_index, first, size, booking_offset, payment_offset)
        booking_offset += chunk.booking_count
        payment_offset += chunk.payment_count
        for table, columns in chunk.columns().items():
            counts[table] += _copy(cur, table, zip(repeat(plan.id), *columns))
        if chunk_count > 1:
            progress(f"    chunk {chunk_index + 1}/{chunk_count}: {size:,} clients, {chunk.booking_count:,} bookings")

    for table, rows in edge_cases.rows().items():
        counts[table] += _copy(cur, table, ((plan.id, *row) for row in rows))
    return counts


def _copy(cur: psycopg.Cursor, table: str, rows: Iterable[Sequence[object]]) -> int:
    """Streams ``rows`` (in TABLE_COLUMNS order) into ``table`` with COPY; returns the count."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, TABLE_COLUMNS[table]))
    )
    count = 0
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


# --- Organizations ------------------------------------------------------------------


def _plan_organizations(settings: GeneratorSettings) -> list[_OrgPlan]:
    """Sizes, ids and shops of every organization, from one seeded generator.

    The generator is seeded with a string, not the int: Python seeds with ``abs(int)``,
    which would give seeds 42 and -42 the same organization ids.
    """
    rng = random.Random(f"customer-analytics-synthetic-data/{settings.seed}")
    sizes = _organization_sizes(rng, settings.organizations, settings.clients_per_org)
    return [_plan_organization(rng, settings, index, size) for index, size in enumerate(sizes)]


def _organization_sizes(rng: random.Random, organizations: int, mean: int) -> list[int]:
    """Client counts summing to ``organizations * mean``, shaped like a Pareto distribution
    (its evenly spaced quantiles, in seeded order: even five organizations show the skew);
    with three or more organizations the last one is a tiny shop without clients."""
    with_clients = organizations - 1 if organizations >= 3 else organizations
    if with_clients == 0:
        return [0] * organizations
    weights = [(1 - (i + 0.5) / with_clients) ** (-1 / PARETO_ALPHA) for i in range(with_clients)]
    rng.shuffle(weights)
    total = organizations * mean
    shares = [weight / sum(weights) * total for weight in weights]
    sizes = [int(share) for share in shares]
    by_remainder = sorted(range(with_clients), key=lambda i: shares[i] - sizes[i], reverse=True)
    for i in by_remainder[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes + [0] * (organizations - with_clients)


def _plan_organization(rng: random.Random, settings: GeneratorSettings, index: int, size: int) -> _OrgPlan:
    org_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    name = f"{rng.choice(BUSINESS_WORDS)} {rng.choice(BUSINESS_KINDS)} #{index + 1}"
    age_days = settings.history_days + rng.randint(30, 900)
    created_at = settings.anchor - timedelta(days=age_days)
    zones = (*HOME_ZONES, *rng.sample(OTHER_ZONES, rng.randint(0, 4) if size else 0))
    regular = tuple(
        _Location("L" + _random_code(rng, CUSTOMER_ALPHABET, 12), f"{ZONE_CITIES[zone]} {n + 1}", zone, True, True)
        for n, zone in enumerate(zones)
    )
    odd = tuple(_Location(location_id, loc_name, zone, True, False) for location_id, loc_name, zone in ODD_LOCATIONS)
    unlisted = (
        _Location(UNLISTED_LOCATION_ID, None, None, False, False),
        _Location(regular[0].square_location_id.lower(), None, None, False, False),
    )
    technicians = tuple("TM" + _random_code(rng, PAYMENT_ALPHABET, 14) for _ in range(min(40, 2 + size // 400)))
    services = tuple(_random_code(rng, CUSTOMER_ALPHABET, 24) for _ in range(min(24, 4 + size // 2_000)))
    return _OrgPlan(
        index=index,
        id=org_id,
        name=name,
        created_at=created_at,
        client_count=size,
        seed=rng.getrandbits(64),
        id_prefixes=tuple(rng.getrandbits(ID_PREFIX_BITS) for _ in range(3)),
        locations=regular + odd + unlisted,
        technician_ids=technicians,
        service_ids=services,
        service_prices=tuple(rng.choice(SERVICE_PRICES) for _ in services),
    )


def _random_code(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


# --- Edge instants: daylight saving and midnights -------------------------------------


def _edge_instants(plan: _OrgPlan, window: _Window) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, location index) of instants where local-date rules go wrong most
    easily: around every daylight-saving change of the organization's zones, at local
    midnight, and at UTC midnight for locations whose day is the UTC date."""
    rng = random.Random(f"{plan.seed}/edge-instants")
    start = datetime.fromtimestamp(window.start, UTC)
    horizon = datetime.fromtimestamp(window.now + DST_HORIZON_DAYS * DAY, UTC)
    window_days = (window.end - window.start) // DAY
    instants: set[tuple[int, int]] = set()
    for index, location in enumerate(plan.locations):
        if location.regular:
            zone = ZoneInfo(location.timezone)
            changes = _offset_changes(location.timezone, start, horizon)
            for change in changes:
                instants.update({(int(change.timestamp()) - 1, index), (int(change.timestamp()), index)})
            days = [change.astimezone(zone).date() for change in changes]
            days += [(start + timedelta(days=rng.randrange(window_days))).date() for _ in range(2)]
            for day in days:
                for wall in (clock_time(0, 0), clock_time(1, 30), clock_time(1, 30, fold=1), clock_time(23, 59, 59)):
                    instants.add((int(datetime.combine(day, wall, zone).timestamp()), index))
        else:
            day = window.start + rng.randrange(window_days) * DAY
            instants.update({(day, index), (day + DAY - 1, index), (day + 2 * HOUR + 30 * MINUTE, index)})
    ordered = np.array(sorted(instants), dtype=np.int64)
    return ordered[:, 0], ordered[:, 1]


@cache
def _offset_changes(zone_name: str, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """UTC instants in [start, end) at which the zone's UTC offset changes, to the second
    (cached: every organization of a run asks for the same zones and window)."""
    zone = ZoneInfo(zone_name)
    changes = []
    before = start
    while before < end:
        after = before + timedelta(hours=1)
        if before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            low, high = before, after  # the offset differs between low and high: bisect
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            changes.append(high.replace(microsecond=0))
        before = after
    return tuple(changes)


# --- Regular clients, vectorized per chunk --------------------------------------------


def _weighted(choices: dict) -> tuple[np.ndarray, np.ndarray]:
    """(values as an object array, probabilities normalised to sum 1) for ``rng.choice``."""
    values = np.empty(len(choices), dtype=object)
    values[:] = list(choices)
    weights = np.array(list(choices.values()), dtype=float)
    return values, weights / weights.sum()


def _zipf_weights(count: int) -> np.ndarray:
    """Popularity of the n-th technician, service or shop: a few busy, a long tail."""
    weights = 1.0 / np.arange(1, count + 1) ** 0.8
    return weights / weights.sum()


def _encode_ids(sequence_numbers: np.ndarray, prefix: int, alphabet: str) -> np.ndarray:
    """Unique ids: a per-organization random prefix, then the sequence number. They sort in
    creation order, so COPY inserts at the right edge of the organization's primary-key
    range instead of all over the index (measured: twice the COPY speed into a fresh
    bookings table)."""
    numbers = np.uint64(prefix << ID_SEQUENCE_BITS) | sequence_numbers.astype(np.uint64)
    shifts = np.arange(ID_WIDTH - 1, -1, -1, dtype=np.uint64) * np.uint64(5)
    digits = (numbers[:, None] >> shifts) & np.uint64(31)
    return np.array(list(alphabet))[digits].view(f"<U{ID_WIDTH}").ravel()


def _iso(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds as ISO 8601 UTC text in one vectorized call (no Python datetime per value)."""
    return np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s", timezone="UTC")


def _nullable(values: np.ndarray, null: np.ndarray) -> list:
    out = values.astype(object)
    out[null] = None
    return out.tolist()


def _stamp_updates(rng: np.random.Generator, created: np.ndarray, natural: np.ndarray, now: int) -> np.ndarray:
    """updated_at: the row's natural last change, re-touched inside 90 days of ``now`` for a
    few rows (a sync), slightly in the future for very few (clock skew), never before
    created_at."""
    updated = natural.copy()
    touched = rng.random(updated.size) < RECENT_TOUCH_SHARE
    updated[touched] = now - rng.integers(0, 89 * DAY, touched.sum())
    updated = np.minimum(updated, now - rng.integers(0, HOUR, updated.size))
    skewed = rng.random(updated.size) < CLOCK_SKEW_SHARE
    updated[skewed] = now + rng.integers(MINUTE, 6 * HOUR, skewed.sum())
    return np.maximum(updated, created)


class _ClientChunk:
    """Up to CHUNK_CLIENTS regular clients of one organization with their bookings,
    payments and referral profiles, drawn as numpy arrays from a generator seeded by
    (organization seed, chunk index)."""

    def __init__(
        self,
        plan: _OrgPlan,
        window: _Window,
        edge_instants: tuple[np.ndarray, np.ndarray],
        chunk_index: int,
        first_client: int,
        size: int,
        booking_offset: int,
        payment_offset: int,
    ) -> None:
        self.plan, self.window, self.first_client, self.size = plan, window, first_client, size
        self.rng = np.random.default_rng([plan.seed, chunk_index])
        self.location_ids = np.array([loc.square_location_id for loc in plan.locations])
        self.customer_ids = _encode_ids(
            np.arange(first_client, first_client + size), plan.id_prefixes[0], CUSTOMER_ALPHABET
        )
        self._draw_profiles()
        self._draw_bookings(edge_instants, booking_offset)
        self._draw_clients()
        self._draw_payments(payment_offset)
        self._draw_referrals()

    @property
    def booking_count(self) -> int:
        return self.booking_ids.size

    @property
    def payment_count(self) -> int:
        return len(self.payment_columns[0])

    def columns(self) -> dict[str, tuple[list, ...]]:
        """Column lists per table, in TABLE_COLUMNS order without organization_id."""
        return {
            "square_existing_clients": self.client_columns,
            "bookings": self.booking_columns,
            "payments": self.payment_columns,
            "referral_profiles": self.referral_columns,
        }

    def _draw_profiles(self) -> None:
        """How often, between which dates, where and with whom each client books:
        most book 1-3 times, regulars dozens, some never."""
        rng, size, window = self.rng, self.size, self.window
        kind = rng.choice(3, size=size, p=(NO_BOOKING_SHARE, OCCASIONAL_SHARE, REGULAR_SHARE))
        occasional = rng.choice((1, 2, 3), size=size, p=(0.5, 0.3, 0.2))
        regular = 4 + np.minimum(rng.lognormal(np.log(16), 0.7, size).astype(np.int64), 150)
        self.booking_counts = np.select([kind == 0, kind == 1], [0, occasional], regular)
        self.first_seen = rng.integers(window.start, window.end, size)
        self.lifespan = rng.exponential(np.where(kind == 2, 420, 120) * DAY).astype(np.int64)
        self.home_location, self.favourite_technician, self.favourite_service = (
            rng.choice(count, size=size, p=_zipf_weights(count))
            for count in (len(self.plan.regular_locations), len(self.plan.technician_ids), len(self.plan.service_ids))
        )

    def _draw_bookings(self, edge_instants: tuple[np.ndarray, np.ndarray], booking_offset: int) -> None:
        """A first visit when the client first appears, the others spread over the client's
        lifespan; visits after the window's end are dropped, so recent clients have fewer
        bookings and the bookings' density stays even over the window."""
        rng, window, plan = self.rng, self.window, self.plan
        owner = np.repeat(np.arange(self.size), self.booking_counts)
        moment = self.first_seen[owner] + (rng.random(owner.size) * self.lifespan[owner]).astype(np.int64)
        first_visits = (np.cumsum(self.booking_counts) - self.booking_counts)[self.booking_counts > 0]
        moment[first_visits] = self.first_seen[owner[first_visits]]
        kept = moment < window.end
        owner, moment = owner[kept], moment[kept]
        self.booking_counts = np.bincount(owner, minlength=self.size)
        m = owner.size

        regular_locations = len(plan.regular_locations)
        elsewhere = rng.random(m) < OTHER_LOCATION_SHARE
        location = np.where(elsewhere, rng.integers(0, regular_locations, m), self.home_location[owner])
        # Appointments fall on quarter hours of the shop's opening hours (standard offset
        # at ``now``: an hour off across daylight saving is fine for ordinary rows).
        now_utc = datetime.fromtimestamp(window.now, UTC)
        offsets = np.array([int(now_utc.astimezone(ZoneInfo(loc.timezone)).utcoffset().total_seconds())
                            for loc in plan.regular_locations])
        slot = OPENING_SECONDS + SLOT_SECONDS * rng.integers(0, SLOTS_PER_DAY, m)
        start = moment // DAY * DAY + slot - offsets[location]
        odd = rng.random(m) < ODD_LOCATION_SHARE
        location[odd] = rng.integers(regular_locations, len(plan.locations), odd.sum())
        # The first chunk with bookings uses every edge instant once; all chunks reuse a few.
        edge_starts, edge_locations = edge_instants
        replaced = min(m, edge_starts.size if booking_offset == 0 else 0) + int(m * EDGE_INSTANT_SHARE)
        positions = rng.choice(m, size=min(m, replaced), replace=False)
        picks = np.resize(rng.permutation(edge_starts.size), positions.size)
        start[positions], location[positions] = edge_starts[picks], edge_locations[picks]

        future = start > window.now
        past_statuses, past_p = _weighted(PAST_BOOKING_STATUSES)
        future_statuses, future_p = _weighted(FUTURE_BOOKING_STATUSES)
        status = np.where(future, rng.choice(future_statuses, m, p=future_p), rng.choice(past_statuses, m, p=past_p))
        non_square = rng.random(m) < NON_SQUARE_STATUS_SHARE
        status[non_square] = rng.choice(np.array(NON_SQUARE_BOOKING_STATUSES, dtype=object), non_square.sum())

        any_technician = rng.integers(0, len(plan.technician_ids), m)
        technician = np.where(rng.random(m) < 0.65, self.favourite_technician[owner], any_technician)
        any_service = rng.integers(0, len(plan.service_ids), m)
        service = np.where(rng.random(m) < 0.75, self.favourite_service[owner], any_service)
        customer_notes, customer_p = _weighted(CUSTOMER_NOTES)
        seller_notes, seller_p = _weighted(SELLER_NOTES)

        lead = np.clip(rng.exponential(7 * DAY, m).astype(np.int64), 10 * MINUTE, 120 * DAY)
        created = np.minimum(start - lead, window.now - rng.integers(MINUTE, DAY, m))
        settled = start + rng.integers(0, 2 * DAY, m)
        edited = created + (rng.random(m) * (window.now - created)).astype(np.int64)
        updated = _stamp_updates(rng, created, np.where(future, edited, settled), window.now)

        self.booking_start, self.booking_status = start, status
        self.booking_location, self.booking_service = location, service
        self.booking_customers = self._customers_of(owner)
        self.booking_ids = _encode_ids(
            np.arange(booking_offset, booking_offset + m), plan.id_prefixes[1], BOOKING_ALPHABET
        )
        self.booking_created = created
        self.booking_columns = (
            self.booking_ids.tolist(),
            self.booking_customers.tolist(),
            self.location_ids[location].tolist(),
            status.tolist(),
            _iso(start).tolist(),
            _nullable(np.array(plan.technician_ids)[technician], rng.random(m) < 0.10),
            _nullable(np.array(plan.service_ids)[service], rng.random(m) < 0.08),
            rng.choice(customer_notes, m, p=customer_p).tolist(),
            rng.choice(seller_notes, m, p=seller_p).tolist(),
            _iso(created).tolist(),
            _iso(updated).tolist(),
        )

    def _customers_of(self, owner: np.ndarray) -> np.ndarray:
        """Each row's customer id, except a few rows of unknown customers: NULL (walk-ins),
        '' , ids of deleted clients, or a real id in the wrong case."""
        rng = self.rng
        customers = self.customer_ids[owner].astype(object)
        unknown = np.flatnonzero(rng.random(owner.size) < UNKNOWN_CUSTOMER_SHARE)
        kind = rng.choice(4, size=unknown.size, p=(0.5, 0.2, 0.15, 0.15))
        deleted = np.array([f"DELETED-{n:03d}" for n in rng.integers(0, 50, unknown.size)], dtype=object)
        wrong_case = np.char.lower(self.customer_ids[owner[unknown]]).astype(object)
        replacement = np.where(kind == 1, deleted, np.where(kind == 2, wrong_case, ""))
        replacement[(kind == 0) | (replacement == customers[unknown])] = None
        customers[unknown] = replacement
        return customers

    def _draw_payments(self, payment_offset: int) -> None:
        """A payment for most past accepted bookings and some no-shows (a fee), plus retail
        sales without a booking; tips, refunds (some larger than the amount), all statuses."""
        rng, window, plan = self.rng, self.window, self.plan
        status, start = self.booking_status, self.booking_start
        draw = rng.random(status.size)
        no_show = status == "NO_SHOW"
        chargeable = ((status == "ACCEPTED") & (draw < 0.88)) | (no_show & (draw < 0.2))
        paid = np.flatnonzero((start <= window.now) & chargeable)
        price = np.array(plan.service_prices)[self.booking_service[paid]]
        add_on = np.where(rng.random(paid.size) < 0.15, rng.integers(500, 3_000, paid.size), 0)
        booked_amount = np.where(no_show[paid], price // 4, price + add_on)
        booked_created = np.minimum(
            start[paid] + rng.integers(30 * MINUTE, 2 * HOUR, paid.size),
            window.now - rng.integers(MINUTE, HOUR, paid.size),
        )

        buyers = np.flatnonzero(rng.random(self.size) < 0.06)
        retail_owner = np.repeat(buyers, rng.integers(1, 3, buyers.size))
        r = retail_owner.size
        retail_customers = self.customer_ids[retail_owner].astype(object)
        retail_customers[rng.random(r) < 0.10] = None

        customers = np.concatenate([self.booking_customers[paid], retail_customers])
        locations = self.location_ids[np.concatenate([self.booking_location[paid], self.home_location[retail_owner]])]
        amount = np.concatenate([booked_amount, rng.choice(RETAIL_PRICES, r)])
        since = self.client_created[retail_owner]
        created = np.concatenate([booked_created, since + (rng.random(r) * (window.now - since)).astype(np.int64)])
        n = amount.size
        bookings = np.full(n, None, dtype=object)
        bookings[: paid.size] = _nullable(self.booking_ids[paid], rng.random(paid.size) < 0.04)

        statuses, status_p = _weighted(PAYMENT_STATUSES)
        payment_status = rng.choice(statuses, n, p=status_p)
        non_square = rng.random(n) < NON_SQUARE_STATUS_SHARE
        payment_status[non_square] = rng.choice(np.array(NON_SQUARE_PAYMENT_STATUSES, dtype=object), non_square.sum())
        tip = np.where(rng.random(n) < 0.35, 0, np.rint(amount * rng.uniform(0.08, 0.25, n)).astype(np.int64))
        refund_kind = rng.choice(4, size=n, p=(0.955, 0.03, 0.012, 0.003))  # none, partial, full, more than paid
        partial = np.rint(amount * rng.uniform(0.1, 0.6, n)).astype(np.int64)
        excessive = amount + tip + rng.integers(1, 5_000, n)
        refunded = np.select([refund_kind == 1, refund_kind == 2, refund_kind == 3], [partial, amount, excessive], 0)
        settle = np.where(refund_kind > 0, rng.integers(DAY, 45 * DAY, n), rng.integers(0, 10 * MINUTE, n))
        updated = _stamp_updates(rng, created, created + settle, window.now)

        ids = _encode_ids(np.arange(payment_offset, payment_offset + n), plan.id_prefixes[2], PAYMENT_ALPHABET)
        self.payment_columns = (
            ids.tolist(),
            customers.tolist(),
            _nullable(locations, rng.random(n) < 0.03),
            bookings.tolist(),
            payment_status.tolist(),
            amount.tolist(),
            tip.tolist(),
            refunded.tolist(),
            _iso(created).tolist(),
            _iso(updated).tolist(),
        )

    def _draw_clients(self) -> None:
        """Client rows created before their first booking; names, emails and phones are
        sometimes NULL and sometimes ''."""
        rng, window, size = self.rng, self.window, self.size
        first_booking_created = np.full(size, window.now)
        has_bookings = self.booking_counts > 0
        if has_bookings.any():
            group_starts = (np.cumsum(self.booking_counts) - self.booking_counts)[has_bookings]
            first_booking_created[has_bookings] = np.minimum.reduceat(self.booking_created, group_starts)
        without = rng.integers(window.start - 180 * DAY, window.now - HOUR, size)
        created = np.where(has_bookings, first_booking_created - rng.integers(0, 14 * DAY, size), without)
        edited = created + (rng.random(size) * (window.now - created)).astype(np.int64)
        updated = _stamp_updates(rng, created, np.where(rng.random(size) < 0.55, created, edited), window.now)

        given = rng.integers(0, len(GIVEN_NAMES), size)
        family = rng.integers(0, len(FAMILY_NAMES), size)
        given_slugs = np.array([slug for _, slug in GIVEN_NAMES])[given]
        family_slugs = np.array([slug for _, slug in FAMILY_NAMES])[family]
        number = rng.integers(0, 1_000, size).astype(str)
        domain = np.array(["@" + domain for domain in EMAIL_DOMAINS])[rng.integers(0, len(EMAIL_DOMAINS), size)]
        emails = np.char.add(np.char.add(np.char.add(given_slugs, "."), family_slugs), np.char.add(number, domain))
        digits = rng.integers(0, 10_000, size)
        area = rng.choice((212, 415, 646, 718, 917), size)
        style = rng.integers(0, 3, size)
        phones = np.array(
            [f"+1{a}555{d:04d}" if s == 0 else f"({a}) 555-{d:04d}" if s == 1 else f"+44 7700 9{d:05d}"
             for a, d, s in zip(area.tolist(), digits.tolist(), style.tolist(), strict=True)],
            dtype=object,
        )
        self.client_columns = (
            self.customer_ids.tolist(),
            self._blanked(np.array([name for name, _ in GIVEN_NAMES], dtype=object)[given], 0.04, 0.02),
            self._blanked(np.array([name for name, _ in FAMILY_NAMES], dtype=object)[family], 0.08, 0.02),
            self._blanked(emails.astype(object), 0.20, 0.03),
            self._blanked(phones, 0.25, 0.03),
            _iso(created).tolist(),
            _iso(updated).tolist(),
        )
        self.client_created = created

    def _blanked(self, values: np.ndarray, null_share: float, empty_share: float) -> list:
        draw = self.rng.random(values.size)
        values[draw < null_share + empty_share] = ""
        values[draw < null_share] = None
        return values.tolist()

    def _draw_referrals(self) -> None:
        """Referral profiles for about one client in eight; some never activated, some
        with NULL or '' source, a few with totals but no activation."""
        rng, window = self.rng, self.window
        owner = np.flatnonzero(rng.random(self.size) < 0.12)
        n = owner.size
        created = np.minimum(self.client_created[owner] + rng.integers(0, 60 * DAY, n), window.now - HOUR)
        activated = np.minimum(created + rng.integers(0, 200 * DAY, n), window.now - MINUTE)
        inactive = rng.random(n) >= 0.55
        referrals = rng.geometric(0.45, n) - 1
        referrals = np.where(inactive & (rng.random(n) >= 0.02), 0, referrals)
        rewards = referrals * rng.choice((1_000, 1_500, 2_500), n)
        last_change = np.where(inactive, created, activated) + rng.integers(0, 30 * DAY, n)
        updated = _stamp_updates(rng, created, last_change, window.now)
        code_numbers = _encode_ids(self.first_client + owner, self.plan.id_prefixes[0] ^ 1, CUSTOMER_ALPHABET)
        codes = np.char.add("REF-", code_numbers)
        sources, source_p = _weighted(REFERRAL_SOURCES)
        self.referral_columns = (
            self.customer_ids[owner].tolist(),
            _nullable(codes, rng.random(n) < 0.05),
            _nullable(_iso(activated), inactive),
            rng.choice(sources, n, p=source_p).tolist(),
            referrals.tolist(),
            rewards.tolist(),
            _iso(created).tolist(),
            _iso(updated).tolist(),
        )


# --- Hand-made edge cases -------------------------------------------------------------


class _EdgeCases:
    """Customers whose analytics are known by construction (ties, boundaries, odd zones),
    written row by row: there are a few dozen per organization."""

    def __init__(self, plan: _OrgPlan, window: _Window) -> None:
        self.plan = plan
        self.now = window.anchor
        self.window_start = datetime.fromtimestamp(window.start, UTC)
        self.new_york = plan.location_id("America/New_York")
        self.london = plan.location_id("Europe/London")
        self.clients: list[tuple] = []
        self.bookings: list[tuple] = []
        self.payments: list[tuple] = []
        self.referrals: list[tuple] = []

    def rows(self) -> dict[str, list[tuple]]:
        return {
            "square_existing_clients": self.clients,
            "bookings": self.bookings,
            "payments": self.payments,
            "referral_profiles": self.referrals,
        }

    def days_ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    def utc_midnight(self, days_ago: int) -> datetime:
        return self.days_ago(days_ago).replace(hour=0, minute=0, second=0, microsecond=0)

    def client(self, label: str, contact: tuple[str | None, str | None, str | None, str | None] | None = None) -> str:
        """Adds a client created (and last changed) well before the window; returns its id
        ``EDGE-<label>``. ``contact``: given and family name, email, phone; derived from
        the label when omitted."""
        customer = f"EDGE-{label}"
        created = self.window_start - timedelta(days=30)
        contact = contact or ("Edge", label.replace("-", " ").title(), f"{label.lower()}@example.com", "+12125550100")
        self.clients.append((customer, *contact, created, created + timedelta(days=1)))
        return customer

    def booking(self, customer: str | None, start: datetime, *, status: str = "ACCEPTED", location: str | None = None,
                booking_id: str | None = None, technician: str | None = None, service: str | None = None,
                customer_note: str | None = None, seller_note: str | None = None,
                updated: datetime | None = None) -> str:
        booking_id = booking_id or f"edge-{len(self.bookings) + 1:04d}"
        created = min(start, self.now) - timedelta(days=3)
        updated = updated or max(created, min(start + timedelta(hours=2), self.now - timedelta(hours=2)))
        self.bookings.append((booking_id, customer, location or self.new_york, status, start, technician, service,
                              customer_note, seller_note, created, updated))
        return booking_id

    def payment(self, customer: str | None, amount: int, *, status: str = "COMPLETED", tip: int = 0,
                refunded: int = 0, created: datetime | None = None, booking_id: str | None = None,
                location: str | None = None) -> None:
        created = created or self.days_ago(20)
        payment_id = f"EDGE-PAY-{len(self.payments) + 1:04d}"
        self.payments.append((payment_id, customer, location, booking_id, status, amount, tip, refunded,
                              created, created + timedelta(minutes=5)))

    def referral(self, customer: str, *, code: str | None, activated: datetime | None, source: str | None,
                 referrals: int = 0, rewards: int = 0) -> None:
        created = self.days_ago(400)
        self.referrals.append((customer, code, activated, source, referrals, rewards, created,
                               max(created, activated or created)))

    def offset_change(self, zone_name: str, *, after_now: bool, fall_back: bool) -> datetime:
        """The zone's last daylight-saving change of that direction before now, or its
        first after now (searched a year either side, whatever the history)."""
        zone, year, second = ZoneInfo(zone_name), timedelta(days=366), timedelta(seconds=1)
        changes = [
            change for change in _offset_changes(zone_name, self.now - year, self.now + year)
            if (change.astimezone(zone).utcoffset() < (change - second).astimezone(zone).utcoffset()) == fall_back
        ]
        return next(c for c in changes if c > self.now) if after_now else [c for c in changes if c <= self.now][-1]

    def add_unknown_customer_rows(self) -> None:
        """Rows every organization has, even one without clients: walk-ins (NULL
        customer), '' customers, customers with no client row, and a wrong-case id."""
        t = self.days_ago(10)
        self.booking(None, t, seller_note="Walk-in")
        self.booking(None, t, location=UNLISTED_LOCATION_ID, status="NO_SHOW")
        self.booking("", t + timedelta(hours=1), customer_note="empty-string customer id")
        no_client = self.booking("EDGE-NO-CLIENT", self.days_ago(40), technician="TM-edge-ghost")
        self.booking("EDGE-NO-CLIENT", self.days_ago(5))
        # EDGE-TIE-FIRST-BOOKING in the wrong case, earlier than that client's first booking.
        self.booking("edge-tie-first-booking", self.window_start - timedelta(days=9))
        self.payment(None, 2_500, location=self.london)
        self.payment(None, 1_850)
        self.payment("EDGE-NO-CLIENT", 4_500, booking_id=no_client, location=self.new_york)
        self.payment("", 999)
        self.referral("EDGE-NO-CLIENT", code="REF-GHOST", activated=self.days_ago(100), source="friend",
                      referrals=2, rewards=2_000)
        self.referral("EDGE-REFERRAL-ONLY", code=None, activated=None, source=None)


_SCENARIOS: list[Callable[[_EdgeCases], None]] = []


def _scenario(function: Callable[[_EdgeCases], None]) -> Callable[[_EdgeCases], None]:
    """Registers an edge-case scenario; each adds one client. Small organizations get
    the first ones only, so the most valuable come first."""
    _SCENARIOS.append(function)
    return function


@_scenario
def _tie_on_first_booking(cases: _EdgeCases) -> None:
    """Two accepted bookings at the same instant: byte order picks 'B-' (0x42) over 'a-'
    (0x61), locale order the reverse; a cancelled '0-' booking at that instant must not count."""
    customer = cases.client("TIE-FIRST-BOOKING")
    first = cases.window_start - timedelta(days=1)
    cases.booking(customer, first, status="CANCELLED_BY_CUSTOMER", booking_id="0-edge-tie",
                  location=cases.london, customer_note="Cancelled, rebooked the same slot")
    cases.booking(customer, first, booking_id="B-edge-tie", location=cases.london, customer_note="Booked first")
    cases.booking(customer, first, booking_id="a-edge-tie", location=cases.new_york,
                  seller_note="Same instant, other shop")
    cases.booking(customer, first + timedelta(days=30), location=cases.london)


@_scenario
def _preferred_tie_goes_to_latest(cases: _EdgeCases) -> None:
    """Technicians x and y both have two accepted bookings; y's latest is later, so y wins
    (not x, the smaller id). NULL has the most accepted bookings and z the most bookings;
    neither counts. Service variations follow the same pattern."""
    customer = cases.client("PREFERRED-LATEST-WINS")
    for days, technician, service in ((250, "TM-edge-y", "SV-edge-p"), (200, "TM-edge-x", "SV-edge-q"),
                                      (100, "TM-edge-x", "SV-edge-q"), (50, "TM-edge-y", "SV-edge-p")):
        cases.booking(customer, cases.days_ago(days), technician=technician, service=service)
    for days in (300, 301, 302):
        cases.booking(customer, cases.days_ago(days))
    not_accepted = ("NO_SHOW", "CANCELLED_BY_CUSTOMER", "CANCELLED_BY_SELLER", "accepted")
    for days, status in zip((10, 11, 12, 13), not_accepted, strict=True):
        cases.booking(customer, cases.days_ago(days), status=status, technician="TM-edge-z", service="SV-edge-r")


@_scenario
def _preferred_tie_goes_to_smallest_id(cases: _EdgeCases) -> None:
    """Equal counts and equal latest instants: the smallest id in byte order, 'TM-B-edge'."""
    customer = cases.client("PREFERRED-SMALLEST-ID")
    latest = cases.days_ago(20)
    for start, suffix in ((cases.days_ago(60), "a"), (cases.days_ago(40), "B"), (latest, "a"), (latest, "B")):
        cases.booking(customer, start, technician=f"TM-{suffix}-edge", service=f"SV-{suffix}-edge")


@_scenario
def _average_half_cent_positive(cases: _EdgeCases) -> None:
    """2,001 cents over two completed payments: 1,000.5 rounds away from zero to 1,001
    (half-even gives 1,000, integer division too). Other statuses do not count."""
    customer = cases.client("AVG-HALF-UP")
    paid = cases.booking(customer, cases.days_ago(21))
    cases.payment(customer, 1_000, tip=150, booking_id=paid, location=cases.new_york)
    cases.payment(customer, 1_001, created=cases.days_ago(15))
    cases.payment(customer, 5_000, status="FAILED")
    cases.payment(customer, 7_000, status="completed")
    cases.payment(customer, 300, status="CANCELED", refunded=300)


@_scenario
def _average_half_cent_negative(cases: _EdgeCases) -> None:
    """A refund larger than its payment: revenue -5 over two payments, -2.5 rounds to -3."""
    customer = cases.client("AVG-HALF-DOWN")
    cases.payment(customer, 1_000, refunded=1_505, tip=200, created=cases.days_ago(80))
    cases.payment(customer, 500, created=cases.days_ago(60), location=cases.london)


@_scenario
def _notes_of_every_kind(cases: _EdgeCases) -> None:
    """One booking per note pair, any status; only the pairs with a non-empty note belong in
    booking_notes (U+00A0, U+2003, VT/FF are not empty). Two notes share an instant."""
    customer = cases.client("NOTES-EVERY-KIND")
    pairs = (
        (None, None), ("", None), (" ", "\t"), ("\n", "\r\n "), ("\r\n ", ""), ("\u00a0", None),
        (None, "\u2003"), ("\x0b\x0c", " "), ("Prefers the window seat", " "), (None, "Allergic to latex"),
        ('Quote " and backslash \\ and emoji 💇', "Zoë’s note: 日本語"), ("  padded text  ", "\t"),
    )
    statuses = ("ACCEPTED", "CANCELLED_BY_CUSTOMER", "NO_SHOW", "UNKNOWN", "PENDING", "DECLINED")
    for n, (customer_note, seller_note) in enumerate(pairs):
        cases.booking(customer, cases.days_ago(200 - 10 * n), status=statuses[n % len(statuses)],
                      customer_note=customer_note, seller_note=seller_note)
    same_instant = cases.days_ago(30)
    cases.booking(customer, same_instant, booking_id="a-edge-note", customer_note="second in byte order")
    cases.booking(customer, same_instant, booking_id="B-edge-note", seller_note="first in byte order")


@_scenario
def _first_booking_at_unlisted_location(cases: _EdgeCases) -> None:
    """First booking at a location with no locations row, late in the UTC day: the view
    uses the UTC date."""
    customer = cases.client("FIRST-AT-UNLISTED-LOCATION")
    day = cases.utc_midnight(45)
    cases.booking(customer, day + timedelta(hours=23, minutes=30), location=UNLISTED_LOCATION_ID)
    cases.booking(customer, day + timedelta(days=7, hours=15))


@_scenario
def _first_booking_at_wrong_case_zone(cases: _EdgeCases) -> None:
    """'america/new_york' is not an exact IANA name: 02:30 UTC counts on its UTC date,
    not on the previous New York date."""
    customer = cases.client("FIRST-AT-WRONG-CASE-ZONE")
    day = cases.utc_midnight(50)
    cases.booking(customer, day + timedelta(hours=2, minutes=30), location="L-EDGE-WRONG-CASE")


@_scenario
def _first_booking_at_invalid_and_missing_zones(cases: _EdgeCases) -> None:
    """UTC midnight at 'Mars/Olympus', the last second of a UTC day with a NULL zone, and
    '' as a zone."""
    customer = cases.client("FIRST-AT-INVALID-ZONE")
    day = cases.utc_midnight(55)
    cases.booking(customer, day, location="L-EDGE-MARS")
    cases.booking(customer, day + timedelta(days=1, seconds=-1), location="L-EDGE-NO-TZ")
    cases.booking(customer, day + timedelta(days=2, minutes=30), location="L-EDGE-EMPTY-TZ")


@_scenario
def _first_booking_on_spring_forward_night(cases: _EdgeCases) -> None:
    """23:30 local on the New York spring-forward day is 03:30 UTC the next day."""
    customer = cases.client("FIRST-ON-NY-SPRING-FORWARD")
    zone = ZoneInfo("America/New_York")
    day = cases.offset_change("America/New_York", after_now=False, fall_back=False).astimezone(zone).date()
    cases.booking(customer, datetime.combine(day, clock_time(23, 30), zone).astimezone(UTC))


@_scenario
def _first_booking_in_repeated_hour(cases: _EdgeCases) -> None:
    """The second 01:30 of the New York fall-back night (EST), a future booking."""
    customer = cases.client("FIRST-ON-NY-FALL-BACK")
    zone = ZoneInfo("America/New_York")
    day = cases.offset_change("America/New_York", after_now=True, fall_back=True).astimezone(zone).date()
    cases.booking(customer, datetime.combine(day, clock_time(1, 30, fold=1), zone).astimezone(UTC))


@_scenario
def _first_booking_after_london_midnight(cases: _EdgeCases) -> None:
    """00:30 local (still BST) on the London fall-back day is 23:30 UTC the day before; a
    no-show one second before the clocks go back."""
    customer = cases.client("FIRST-ON-LONDON-FALL-BACK")
    zone = ZoneInfo("Europe/London")
    change = cases.offset_change("Europe/London", after_now=False, fall_back=True)
    day = change.astimezone(zone).date()
    after_midnight = datetime.combine(day, clock_time(0, 30), zone).astimezone(UTC)
    cases.booking(customer, after_midnight, location=cases.london)
    cases.booking(customer, change - timedelta(seconds=1), location=cases.london, status="NO_SHOW")


@_scenario
def _segment_new_boundary(cases: _EdgeCases) -> None:
    """Only accepted booking exactly 30 days of 86,400 s before now: NEW (inclusive)."""
    cases.booking(cases.client("SEGMENT-NEW-BOUNDARY"), cases.days_ago(30))


@_scenario
def _segment_active_boundary(cases: _EdgeCases) -> None:
    """Last accepted booking exactly 90 days before now: ACTIVE."""
    customer = cases.client("SEGMENT-ACTIVE-BOUNDARY")
    cases.booking(customer, cases.days_ago(200))
    cases.booking(customer, cases.days_ago(90))


@_scenario
def _segment_at_risk_boundary(cases: _EdgeCases) -> None:
    """Last accepted booking exactly 180 days before now: AT_RISK."""
    customer = cases.client("SEGMENT-AT-RISK-BOUNDARY")
    cases.booking(customer, cases.days_ago(300))
    cases.booking(customer, cases.days_ago(180))


@_scenario
def _segment_lost_by_a_second(cases: _EdgeCases) -> None:
    """Last accepted booking 180 days and one second before now (later ones cancelled): LOST."""
    customer = cases.client("SEGMENT-LOST-BY-A-SECOND")
    cases.booking(customer, cases.days_ago(400))
    cases.booking(customer, cases.days_ago(180) - timedelta(seconds=1))
    cases.booking(customer, cases.days_ago(5), status="CANCELLED_BY_CUSTOMER")
    cases.booking(customer, cases.days_ago(2), status="NO_SHOW")


@_scenario
def _future_bookings_only(cases: _EdgeCases) -> None:
    """Only future bookings: first_booking_at is in the future, so NEW."""
    customer = cases.client("FUTURE-ONLY")
    cases.booking(customer, cases.days_ago(-20))
    cases.booking(customer, cases.days_ago(-40), status="PENDING")


@_scenario
def _non_square_statuses_only(cases: _EdgeCases) -> None:
    """Statuses that only look accepted or completed count nowhere, but notes still show."""
    customer = cases.client("NON-SQUARE-STATUSES")
    for n, status in enumerate(NON_SQUARE_BOOKING_STATUSES):
        cases.booking(customer, cases.days_ago(70 - n), status=status, customer_note=f"status {status!r}")
    for status in NON_SQUARE_PAYMENT_STATUSES:
        cases.payment(customer, 4_000, status=status)


@_scenario
def _payments_without_bookings(cases: _EdgeCases) -> None:
    """Revenue but no booking (gift cards, retail): payments count, segment is LOST."""
    customer = cases.client("PAYMENTS-ONLY")
    cases.payment(customer, 2_999, tip=450, created=cases.days_ago(12), location=cases.london)
    cases.payment(customer, 1_500, refunded=1_500, created=cases.days_ago(8))


@_scenario
def _active_referrer(cases: _EdgeCases) -> None:
    customer = cases.client("REFERRER")
    cases.booking(customer, cases.days_ago(120))
    cases.referral(customer, code="REF-EDGE-1", activated=cases.days_ago(110), source="instagram",
                   referrals=3, rewards=4_500)


@_scenario
def _referral_profile_not_activated(cases: _EdgeCases) -> None:
    """A profile but no activation and no source: not a referrer; totals still copied."""
    customer = cases.client("REFERRAL-NOT-ACTIVATED")
    cases.booking(customer, cases.days_ago(140))
    cases.referral(customer, code="REF-EDGE-2", activated=None, source=None, referrals=1, rewards=0)


@_scenario
def _referral_with_empty_source(cases: _EdgeCases) -> None:
    """'' is a source like any other, not a missing one."""
    customer = cases.client("REFERRAL-EMPTY-SOURCE")
    cases.referral(customer, code=None, activated=cases.days_ago(3), source="")


@_scenario
def _changed_on_lookback_boundary(cases: _EdgeCases) -> None:
    """Only change stamped exactly 90 days before now: inside recent mode's look-back."""
    customer = cases.client("RECENT-BOUNDARY-INSIDE")
    cases.booking(customer, cases.days_ago(120), updated=cases.days_ago(90))


@_scenario
def _changed_just_before_lookback(cases: _EdgeCases) -> None:
    """Only change stamped 90 days and one second before now: outside the look-back."""
    customer = cases.client("RECENT-BOUNDARY-OUTSIDE")
    cases.booking(customer, cases.days_ago(120), updated=cases.days_ago(90) - timedelta(seconds=1))


@_scenario
def _empty_string_contact_details(cases: _EdgeCases) -> None:
    """'' is a value, copied as is."""
    customer = cases.client("EMPTY-STRINGS", contact=("", "", "", ""))
    cases.booking(customer, cases.days_ago(33), customer_note="")


@_scenario
def _null_contact_details(cases: _EdgeCases) -> None:
    """NULL contact details and no activity at all: zeros, NULLs, LOST."""
    cases.client("NULL-CONTACT", contact=(None, None, None, None))


@_scenario
def _tie_on_numeric_looking_ids(cases: _EdgeCases) -> None:
    """Three accepted bookings at one instant: byte order gives 'B9-edge' < 'b10-edge' <
    'b9-edge' (locale order: 'b10-edge' first)."""
    customer = cases.client("TIE-NUMERIC-IDS")
    start = cases.days_ago(300)
    for booking_id, technician in (("b10-edge", "TM-edge-1"), ("b9-edge", "TM-edge-2"), ("B9-edge", "TM-edge-3")):
        cases.booking(customer, start, booking_id=booking_id, technician=technician, location=cases.london)


@_scenario
def _many_bookings(cases: _EdgeCases) -> None:
    """A weekly regular: dozens of bookings with a mix of statuses and technicians."""
    customer = cases.client("WEEKLY-REGULAR")
    statuses = ("ACCEPTED",) * 8 + ("CANCELLED_BY_CUSTOMER", "NO_SHOW")
    for week in range(60):
        start, status = cases.days_ago(7 * week + 0.5), statuses[week % len(statuses)]
        booking_id = cases.booking(customer, start, status=status,
                                   technician=("TM-edge-x", "TM-edge-y", None)[week % 3], service="SV-edge-p")
        if status == "ACCEPTED":
            cases.payment(customer, 4_500 + week, tip=500, created=start + timedelta(hours=1),
                          booking_id=booking_id, location=cases.new_york)


# --- Command line ---------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m customer_analytics_pipeline.dev.demo.synthetic_data --database-url URL ...``"""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="libpq URL of a database that has the source tables (default: $DATABASE_URL)")
    parser.add_argument("--organizations", type=int, default=GeneratorSettings.organizations)
    parser.add_argument("--clients-per-org", type=int, default=GeneratorSettings.clients_per_org)
    parser.add_argument("--seed", type=int, default=GeneratorSettings.seed)
    parser.add_argument("--history-days", type=int, default=GeneratorSettings.history_days)
    parser.add_argument("--now", type=datetime.fromisoformat, default=None,
                        help=f"ISO 8601 anchor instant, with a UTC offset (default {DEFAULT_NOW.isoformat()})")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    try:
        settings = GeneratorSettings(
            organizations=args.organizations, clients_per_org=args.clients_per_org, seed=args.seed,
            now=args.now, history_days=args.history_days,
        )
    except ValueError as error:
        parser.error(str(error))
    with psycopg.connect(args.database_url) as conn:
        counts = generate(conn, settings, progress=lambda message: print(message, flush=True))
    for table, count in counts.items():
        print(f"{table}: {count:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
