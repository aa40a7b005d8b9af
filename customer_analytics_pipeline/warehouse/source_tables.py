"""The application's source tables as the project reads them (docs/contract.md, Source
tables): for each table, every column some SQL of the project reads, with its type and
nullability as the contract states them, and which part of the project reads it.

This is the one list. The Dagster layer makes the tables' external assets, their column
schema and the assets' dependencies from it (``defs/source_assets.py``);
``customer_analytics_pipeline_tests/warehouse/test_source_tables.py`` compares it with
what PostgreSQL plans for every statement the refresh, the checks, the ticks and the
views run, and with the source tables' DDL. A column the SQL starts to read, or stops
reading, fails that test until it is listed here (or removed).

``application_logs`` is not here: the project appends its run history to it and never
reads it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

# Who reads a column.
REFRESH = "refresh"  # the refresh step, which writes customer_analytics and customer_segment_changes
DAILY_VIEW = "daily view"  # the view analytics_appointments_by_location_daily
CHECKS = "checks"  # the eight checks (the eighth reads the daily view)
SCHEDULING = "ticks and sensors"  # the hourly and nightly ticks, the freshness check, the partitions sensor
READERS = (REFRESH, DAILY_VIEW, CHECKS, SCHEDULING)

# Types as PostgreSQL's format_type spells them (so does the catalog's column schema).
UUID, TEXT, INTEGER, BIGINT, TIMESTAMPTZ = "uuid", "text", "integer", "bigint", "timestamp with time zone"


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type_name: str
    nullable: bool
    read_by: frozenset[str]
    description: str


@dataclass(frozen=True)
class SourceTable:
    name: str
    description: str
    columns: tuple[SourceColumn, ...]
    # The refresh and the hourly tick hash each row's version (xmin), read through the
    # view customer_analytics_source_row_versions: customers' fingerprints, organizations' proofs.
    row_versions_read: bool = False

    def is_read_by(self, reader: str) -> bool:
        return any(reader in column.read_by for column in self.columns)


def _column(name: str, type_name: str, read_by: Iterable[str], description: str, nullable: bool = False):
    return SourceColumn(name, type_name, nullable, frozenset(read_by), description)


ALL = READERS
ORGANIZATION_ID = "The organization (tenant)."

SOURCE_TABLES = (
    SourceTable(
        "organizations",
        "The application's organizations (tenants): one partition of customer_analytics per row.",
        (
            _column("id", UUID, (REFRESH, CHECKS, SCHEDULING),
                    "The organization; its lowercase text is the `organizations` partition key."),
            _column("name", TEXT, (SCHEDULING,),
                    "Shown beside the id wherever organizations are listed: the freshness check's stale "
                    "organizations here; check results, alerts and the command line also look it up."),
            _column("created_at", TIMESTAMPTZ, (SCHEDULING,),
                    "An organization created within the freshness window is not stale yet."),
        ),
    ),
    SourceTable(
        "locations",
        "The organizations' Square locations: their time zone makes the daily view's local days.",
        (
            _column("organization_id", UUID, (DAILY_VIEW, CHECKS), ORGANIZATION_ID),
            _column("square_location_id", TEXT, (DAILY_VIEW, CHECKS),
                    "The location, as bookings.location_id names it."),
            _column("timezone", TEXT, (DAILY_VIEW, CHECKS),
                    "IANA zone name of the location's local days; NULL or not an exact zone name: UTC days.",
                    nullable=True),
        ),
    ),
    SourceTable(
        "square_existing_clients",
        "The organizations' Square customers: exactly one customer_analytics row each.",
        (
            _column("organization_id", UUID, ALL, ORGANIZATION_ID),
            _column("square_customer_id", TEXT, ALL, "The customer; with organization_id, the key."),
            _column("given_name", TEXT, (REFRESH,), "Copied to customer_analytics as it is.", nullable=True),
            _column("family_name", TEXT, (REFRESH,), "Copied to customer_analytics as it is.", nullable=True),
            _column("email_address", TEXT, (REFRESH, CHECKS),
                    "Copied to customer_analytics as it is (masked in check output).", nullable=True),
            _column("phone_number", TEXT, (REFRESH, CHECKS),
                    "Copied to customer_analytics as it is (masked in check output).", nullable=True),
            _column("updated_at", TIMESTAMPTZ, (REFRESH, CHECKS),
                    "Checks, and the refresh's audit of its own rows, leave clients changed since the last "
                    "refresh to the next one."),
        ),
        row_versions_read=True,
    ),
    SourceTable(
        "bookings",
        "Square bookings, any status: visits, cancellations, no-shows, notes and preferences of each customer, "
        "and the daily view's appointments.",
        (
            _column("organization_id", UUID, ALL, ORGANIZATION_ID),
            _column("id", TEXT, (REFRESH, CHECKS, SCHEDULING), "The booking; ties are broken on it in byte order."),
            _column("square_customer_id", TEXT, (REFRESH, DAILY_VIEW, CHECKS),
                    "The customer; NULL or unknown: counted only in the daily view's appointments.", nullable=True),
            _column("location_id", TEXT, (REFRESH, DAILY_VIEW, CHECKS),
                    "The location: first booking location, distinct locations, the daily view's groups."),
            _column("status", TEXT, (REFRESH, DAILY_VIEW, CHECKS),
                    "Square's status, compared exactly: ACCEPTED bookings are visits; cancellations and no-shows "
                    "are counted."),
            _column("start_at", TIMESTAMPTZ, (REFRESH, DAILY_VIEW, CHECKS),
                    "First and last visit, the segment, the notes' order, the daily view's day."),
            _column("technician_id", TEXT, (REFRESH,), "Square team member: the preferred technician.",
                    nullable=True),
            _column("service_variation_id", TEXT, (REFRESH,), "The preferred service variation.", nullable=True),
            _column("customer_note", TEXT, (REFRESH,), "Copied into booking_notes when not blank.", nullable=True),
            _column("seller_note", TEXT, (REFRESH,), "Copied into booking_notes when not blank.", nullable=True),
            _column("updated_at", TIMESTAMPTZ, (REFRESH, CHECKS),
                    "Checks, and the refresh's audit of its own rows, leave bookings changed since the last "
                    "refresh to the next one."),
        ),
        row_versions_read=True,
    ),
    SourceTable(
        "payments",
        "Square payments: the COMPLETED ones make each customer's revenue, tips, payments and average ticket.",
        (
            _column("organization_id", UUID, (REFRESH, CHECKS, SCHEDULING), ORGANIZATION_ID),
            _column("id", TEXT, (REFRESH, SCHEDULING), "The payment (named in its row version)."),
            _column("square_customer_id", TEXT, (REFRESH, CHECKS), "The customer; NULL or unknown: counted nowhere.",
                    nullable=True),
            _column("status", TEXT, (REFRESH, CHECKS), "Square's status, compared exactly: only COMPLETED counts."),
            _column("amount_cents", BIGINT, (REFRESH, CHECKS), "Amount without the tip, in cents: revenue."),
            _column("tip_cents", BIGINT, (REFRESH,), "Tip in cents: total_tips_cents."),
            _column("refunded_cents", BIGINT, (REFRESH, CHECKS), "Refunded cents, deducted from revenue."),
            _column("created_at", TIMESTAMPTZ, (REFRESH,), "When the payment was made: last_payment_at."),
            _column("updated_at", TIMESTAMPTZ, (REFRESH, CHECKS),
                    "Checks, and the refresh's audit of its own rows, leave payments changed since the last "
                    "refresh to the next one."),
        ),
        row_versions_read=True,
    ),
    SourceTable(
        "referral_profiles",
        "Square referral profiles: at most one per customer, copied into customer_analytics's referral columns.",
        (
            _column("organization_id", UUID, (REFRESH, CHECKS, SCHEDULING), ORGANIZATION_ID),
            _column("square_customer_id", TEXT, (REFRESH, CHECKS, SCHEDULING),
                    "The customer; with organization_id, the key."),
            _column("activated_at", TIMESTAMPTZ, (REFRESH, CHECKS),
                    "When the customer became a referrer (NULL: not a referrer).", nullable=True),
            _column("referral_source", TEXT, (REFRESH, CHECKS),
                    "How the customer was referred (free text, never shown by a check).", nullable=True),
            _column("total_referrals", INTEGER, (REFRESH, CHECKS), "Copied to customer_analytics."),
            _column("total_rewards_cents", BIGINT, (REFRESH, CHECKS), "Copied to customer_analytics."),
            _column("updated_at", TIMESTAMPTZ, (REFRESH, CHECKS),
                    "Checks, and the refresh's audit of its own rows, leave profiles changed since the last "
                    "refresh to the next one."),
        ),
        row_versions_read=True,
    ),
)


def tables_read_by(reader: str) -> tuple[SourceTable, ...]:
    """The source tables ``reader`` reads some column of, in the order above."""
    return tuple(table for table in SOURCE_TABLES if table.is_read_by(reader))
