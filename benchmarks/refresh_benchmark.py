"""Refresh benchmark: what the nightly full refresh, the hourly `recent`, their
checks, a scheduled tick through Dagster and the dashboard view cost, side by side in
one run, against a floor of one plain read and one plain write.

    python benchmarks/refresh_benchmark.py                      # 250,000 and 1,000,000 clients
    python benchmarks/refresh_benchmark.py --sizes 2000 --organizations 20 --report /tmp/perf.md   # smoke

The default run took 14.0 minutes on a 2-core Intel machine with the refresh of 19c6771
(22.9 minutes on a 2-core AMD one with that of 5faa42b); the benchmark's own work (data,
indexes, floors, view) is about 3 of them, the rest is the pipeline's refreshes, checks
and Dagster runs being measured.

Per size (clients) it generates, inside PostgreSQL (INSERT ... SELECT over
generate_series), 2,000 organizations whose client counts fall off as 1/k^0.8, about 4
bookings, 2.16 payments and 0.1 referral rows per client, every ``updated_at`` spread
evenly over the two years before an anchor (so about half the customers have a row in
the 90-day window); applies the source tables, the optional source indexes and the
pipeline's migrations; then measures, in batches of 100 organizations (the schedules'
runs hold about as many customers): the read and write floors, a full refresh into the empty table, a no-op full,
`recent` with nothing changed, `recent` after 3% of customers changed (late-synced rows,
hard deletes, moves), the eight checks after each batch of the full and of that
`recent`, one hourly tick through Dagster, the view's one-organization query, and
peak memory.

Everything runs in a scratch database it creates on the server of ``--server-url``
(default ``DATABASE_URL``, else the embedded server) and drops at the end, also on
failure or Ctrl-C. The figures go to stdout and to ``--report`` (default
``docs/performance.md``); in an existing report only the text between the benchmark's
markers is replaced, so analysis written around it is kept.
"""

import argparse
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster
import psycopg
import yaml
from dagster import DagsterInstance, build_schedule_context, instance_for_test
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import customer_analytics_pipeline
from customer_analytics_pipeline.defs.factory import build_definitions
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.partitions import ORGANIZATIONS_PARTITION_NAME
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.dev.dagster_instance import DAGSTER_RUN_ENVIRONMENT, sqlalchemy_url
from customer_analytics_pipeline.dev.pgbouncer import PgBouncerUnavailable, running_pgbouncer
from customer_analytics_pipeline.settings import Settings, load_settings
from customer_analytics_pipeline.warehouse import refresh as refresh_module
from customer_analytics_pipeline.warehouse.checks.evaluation import evaluate_checks
from customer_analytics_pipeline.warehouse.connection import SessionLimits, connect, embedded_database_url
from customer_analytics_pipeline.warehouse.migrations import apply_source_indexes, create_source_tables, migrate
from customer_analytics_pipeline.warehouse.organizations import organization_keys
from customer_analytics_pipeline.warehouse.refresh import (
    REFRESH_CODE_VERSION,
    RefreshParameters,
    RefreshResult,
    refresh_customer_analytics,
)
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_TABLE
from customer_analytics_pipeline.warehouse.views import VIEW_NAME

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_REPORT = REPOSITORY / "docs" / "performance.md"
REPORT_BEGIN = "<!-- refresh_benchmark: begin (generated; text outside these markers is kept) -->"
REPORT_END = "<!-- refresh_benchmark: end -->"

HISTORY = timedelta(days=730)
# Describes the data: the share of customers with a row stamped in the last 90 days (what
# recent's former look-back window saw; recent now recomputes any changed customer).
RECENT_WINDOW = timedelta(days=90)
SIZE_SKEW = 0.8  # organization k has clients proportional to 1/k^0.8
BOOKINGS_PER_CLIENT = 4
PAYMENTS_PER_BOOKING = 0.54  # 2.16 payments per client
REFERRAL_SHARE = 0.10
FLOOR_REPEATS = 3  # floors are lower bounds: best of three
HOURLY_SCHEDULE = "hourly_recent_refresh"
# Refresh steps production runs at once: the pools' limit in deploy/dagster.yaml.
PRODUCTION_POOL_LIMIT = yaml.safe_load((REPOSITORY / "deploy" / "dagster.yaml").read_text())["concurrency"]["pools"][
    "default_limit"]

# The source columns compute_customer_rows.sql reads, one aggregate each, per table: a
# scan that has to deform and look at every one of them once (the read floor).
READ_FLOOR_QUERIES = {
    "square_existing_clients": """
        SELECT count(organization_id), sum(length(square_customer_id)), sum(length(given_name)),
               sum(length(family_name)), sum(length(email_address)), sum(length(phone_number))
        FROM square_existing_clients""",
    "bookings": """
        SELECT count(organization_id), sum(length(square_customer_id)), sum(length(id)), sum(length(location_id)),
               sum(length(status)), max(start_at), sum(length(technician_id)), sum(length(service_variation_id)),
               sum(length(customer_note)), sum(length(seller_note))
        FROM bookings""",
    "payments": """
        SELECT count(organization_id), sum(length(square_customer_id)), sum(length(status)), sum(amount_cents),
               sum(refunded_cents), sum(tip_cents), max(created_at)
        FROM payments""",
    "referral_profiles": """
        SELECT count(organization_id), sum(length(square_customer_id)), max(activated_at),
               sum(length(referral_source)), sum(total_referrals), sum(total_rewards_cents)
        FROM referral_profiles""",
}

# --- data ------------------------------------------------------------------------------
# Each draw happens once per row in an OFFSET 0 subquery (which the planner does not
# flatten), so an expression that uses a drawn value twice sees the same value.

ORGANIZATION_SIZES_SQL = """
CREATE TABLE benchmark_organizations AS
WITH weights AS (
    SELECT k, power(k, -%(skew)s::float8) AS weight FROM generate_series(1, %(organizations)s::int) AS k
), sized AS (
    SELECT k, greatest(1, round(%(clients)s::int * weight / sum(weight) OVER ()))::int AS clients FROM weights
)
SELECT k,
       md5(%(seed)s::text || ':organization:' || k)::uuid AS id,
       clients,
       ARRAY(SELECT 'L' || upper(substr(md5(%(seed)s::text || ':location:' || k || ':' || j), 1, 12))
             FROM generate_series(1, 1 + least(5, clients / 4000)) AS j) AS location_ids,
       ARRAY(SELECT 'TM' || substr(md5(%(seed)s::text || ':technician:' || k || ':' || j), 1, 14)
             FROM generate_series(1, 2 + least(38, clients / 400)) AS j) AS technician_ids,
       ARRAY(SELECT upper(substr(md5(%(seed)s::text || ':service:' || k || ':' || j), 1, 24))
             FROM generate_series(1, 8 + k %% 17) AS j) AS service_variation_ids
FROM sized
"""

ORGANIZATIONS_SQL = """
INSERT INTO organizations (id, name, created_at)
SELECT id,
       (ARRAY['Harbor', 'Velvet', 'Juniper', 'Copper', 'Lumière', 'Maple', 'Indigo', 'Saffron', 'Nordic'])[1 + k %% 9]
       || ' ' || (ARRAY['Salon', 'Barbers', 'Day Spa', 'Nail Bar', 'Studio', 'Brow & Lash', 'Wellness'])[1 + k %% 7]
       || ' #' || k,
       %(history_start)s::timestamptz - interval '1 year' + k * interval '1 hour'
FROM benchmark_organizations
"""

# One organization in 50 has a location without a time zone (the view falls back to UTC).
LOCATIONS_SQL = """
INSERT INTO locations (organization_id, square_location_id, name, timezone)
SELECT o.id, l.location_id, 'Location ' || l.n,
       CASE WHEN o.k %% 50 = 0 AND l.n = 1 THEN NULL
            ELSE (ARRAY['America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Europe/London',
                        'Europe/Berlin', 'Australia/Sydney', 'Asia/Kolkata', 'America/Denver'])[1 + (o.k + l.n) %% 8]
       END
FROM benchmark_organizations AS o
CROSS JOIN LATERAL unnest(o.location_ids) WITH ORDINALITY AS l (location_id, n)
"""

CUSTOMER_ID = "'C' || upper(substr(md5({org}::text || ':' || {n}), 1, 25))"

CLIENTS_SQL = f"""
INSERT INTO square_existing_clients
    (organization_id, square_customer_id, given_name, family_name, email_address, phone_number, created_at, updated_at)
SELECT organization_id, square_customer_id, given_name, family_name,
       CASE WHEN r_email < 0.85 THEN lower(given_name) || '.' || lower(family_name) || '.' || n || '@example.com' END,
       CASE WHEN r_phone < 0.75 THEN '+1' || (2012000000 + floor(r_phone * 7000000000))::bigint END,
       updated_at - (updated_at - %(history_start)s::timestamptz) * r_created,
       updated_at
FROM (
    SELECT o.id AS organization_id, n, {CUSTOMER_ID.format(org="o.id", n="n")} AS square_customer_id,
           (ARRAY['Ava', 'Liam', 'Zoë', 'José', 'Mia', 'Noah', 'Priya', 'Chen', 'Fatima', 'Olivia', 'Lucas',
                  'Amara', 'Sofia', 'Mateo', 'Hana', 'Aoife', 'Léa', 'Omar', 'Kai', 'Ethan'])
               [1 + floor(random() * 20)::int] AS given_name,
           (ARRAY['Smith', 'García', 'O''Brien', 'Nguyen', 'Patel', 'Müller', 'Kim', 'Johnson', 'Rossi',
                  'Kowalski', 'Silva', 'Tanaka', 'Okafor', 'Dubois', 'Singh', 'Cohen'])[1 + floor(random() * 16)::int]
               AS family_name,
           random() AS r_email, random() AS r_phone, random() AS r_created,
           %(anchor)s::timestamptz - %(history)s::interval * random() AS updated_at
    FROM benchmark_organizations AS o
    CROSS JOIN LATERAL generate_series(1, o.clients) AS n
    OFFSET 0
) AS drawn
"""

# A booking is made up to a week before its last update and starts up to 45 days after
# it was made (so a few start after the anchor); customers are drawn with a skew
# (power 1.6: regulars and one-off visitors); 2% of bookings have no known customer.
BOOKINGS_SQL = f"""
INSERT INTO bookings
    (organization_id, id, square_customer_id, location_id, status, start_at, technician_id,
     service_variation_id, customer_note, seller_note, created_at, updated_at)
SELECT organization_id, id, square_customer_id, location_id,
       CASE WHEN start_at > %(anchor)s::timestamptz THEN
                CASE WHEN r_status < 0.84 THEN 'ACCEPTED' WHEN r_status < 0.94 THEN 'PENDING'
                     WHEN r_status < 0.98 THEN 'CANCELLED_BY_CUSTOMER' ELSE 'CANCELLED_BY_SELLER' END
            WHEN r_status < 0.78 THEN 'ACCEPTED' WHEN r_status < 0.86 THEN 'CANCELLED_BY_CUSTOMER'
            WHEN r_status < 0.89 THEN 'CANCELLED_BY_SELLER' WHEN r_status < 0.93 THEN 'NO_SHOW'
            WHEN r_status < 0.97 THEN 'DECLINED' ELSE 'PENDING' END,
       start_at, technician_id, service_variation_id,
       CASE WHEN r_note < 0.12
                THEN (ARRAY['Running 10 minutes late', 'Prefers a quiet room', 'First visit, referred by a friend',
                            'Patch test done', 'Two lines' || chr(10) || 'of text', 'Allergic to lavender oil'])
                     [1 + floor(r_note / 0.02)::int]
            WHEN r_note < 0.14 THEN ' ' || chr(9) END,
       CASE WHEN r_seller < 0.08
                THEN (ARRAY['Paid deposit', 'Use the gentle shampoo', 'VIP', 'No-show twice before'])
                     [1 + floor(r_seller / 0.02)::int] END,
       created_at, updated_at
FROM (
    SELECT *, updated_at - interval '7 days' * r_created AS created_at,
           date_trunc('hour', updated_at - interval '7 days' * r_created + interval '45 days' * r_start)
               + interval '15 minutes' * floor(4 * r_start) AS start_at
    FROM (
        SELECT o.id AS organization_id,
               substr(md5(o.id::text || ':booking:' || s), 1, 14) AS id,
               CASE WHEN random() >= 0.02
                    THEN {CUSTOMER_ID.format(org="o.id", n="1 + floor(o.clients * power(random(), 1.6))::int")}
               END AS square_customer_id,
               o.location_ids[1 + floor(random() * cardinality(o.location_ids))::int] AS location_id,
               CASE WHEN random() < 0.9
                    THEN o.technician_ids[1 + floor(random() * cardinality(o.technician_ids))::int] END
                   AS technician_id,
               CASE WHEN random() < 0.95
                    THEN o.service_variation_ids[1 + floor(random() * cardinality(o.service_variation_ids))::int] END
                   AS service_variation_id,
               random() AS r_status, random() AS r_note, random() AS r_seller, random() AS r_created,
               random() AS r_start,
               %(anchor)s::timestamptz - %(history)s::interval * random() AS updated_at
        FROM benchmark_organizations AS o
        CROSS JOIN LATERAL generate_series(1, %(bookings_per_client)s::int * o.clients) AS s
        OFFSET 0
    ) AS drawn
    OFFSET 0
) AS timed
"""

# About one booking in two gets a payment: at its start (a deposit when it is in the
# future), updated when paid or, for refunds, a few days later.
PAYMENTS_SQL = """
INSERT INTO payments
    (organization_id, id, square_customer_id, location_id, booking_id, status, amount_cents, tip_cents,
     refunded_cents, created_at, updated_at)
SELECT organization_id, id, square_customer_id, location_id, booking_id,
       CASE WHEN r_status < 0.90 THEN 'COMPLETED' WHEN r_status < 0.925 THEN 'APPROVED'
            WHEN r_status < 0.945 THEN 'PENDING' WHEN r_status < 0.97 THEN 'CANCELED' ELSE 'FAILED' END,
       amount_cents,
       CASE WHEN r_tip < 0.4 THEN 0 ELSE round(amount_cents * (0.1 + 0.15 * r_tip))::bigint END,
       CASE WHEN r_refund < 0.03 THEN amount_cents WHEN r_refund < 0.05 THEN amount_cents / 2 ELSE 0 END,
       created_at,
       CASE WHEN r_refund < 0.05 THEN least(%(anchor)s::timestamptz, created_at + interval '5 days' * r_tip)
            ELSE created_at END
FROM (
    SELECT b.organization_id, substr(md5(b.organization_id::text || ':payment:' || b.id), 1, 29) AS id,
           b.square_customer_id, b.location_id, b.id AS booking_id,
           (ARRAY[2500, 2999, 3500, 4199, 4500, 5500, 6550, 7999, 8500, 9999, 12000, 15050, 18000, 22500])
               [1 + floor(random() * 14)::int]::bigint AS amount_cents,
           least(%(anchor)s::timestamptz,
                 CASE WHEN b.start_at <= %(anchor)s::timestamptz THEN b.start_at + interval '1 hour'
                      ELSE b.created_at END) AS created_at,
           random() AS r_status, random() AS r_tip, random() AS r_refund
    FROM bookings AS b
    WHERE random() < %(payments_per_booking)s::float8
    OFFSET 0
) AS drawn
"""

REFERRALS_SQL = """
INSERT INTO referral_profiles
    (organization_id, square_customer_id, referral_code, activated_at, referral_source, total_referrals,
     total_rewards_cents, created_at, updated_at)
SELECT organization_id, square_customer_id, referral_code,
       CASE WHEN r_active < 0.6 THEN updated_at - interval '200 days' * r_active END,
       (ARRAY[NULL, NULL, 'friend', 'instagram', 'google', 'walk_in', ''])[1 + floor(r_source * 7)::int],
       referrals, referrals * 1500, updated_at - interval '300 days' * r_source, updated_at
FROM (
    SELECT c.organization_id, c.square_customer_id,
           upper(substr(md5(c.organization_id::text || ':referral:' || c.square_customer_id), 1, 8)) AS referral_code,
           floor(power(random(), 3) * 12)::int AS referrals,
           random() AS r_active, random() AS r_source,
           %(anchor)s::timestamptz - %(history)s::interval * random() AS updated_at
    FROM square_existing_clients AS c
    WHERE random() < %(referral_share)s::float8
    OFFSET 0
) AS drawn
"""

IN_WINDOW_SQL = """
SELECT count(*) FROM (
    SELECT organization_id, square_customer_id FROM square_existing_clients WHERE updated_at >= %(since)s
    UNION SELECT organization_id, square_customer_id FROM bookings
          WHERE updated_at >= %(since)s AND square_customer_id IS NOT NULL
    UNION SELECT organization_id, square_customer_id FROM payments
          WHERE updated_at >= %(since)s AND square_customer_id IS NOT NULL
    UNION SELECT organization_id, square_customer_id FROM referral_profiles WHERE updated_at >= %(since)s
) AS customers_in_window
"""

# --- the write floor: one INSERT of N rows shaped like customer_analytics -------------

WRITE_FLOOR_TABLE_SQL = """
CREATE TABLE benchmark_write_floor
    (LIKE customer_analytics INCLUDING DEFAULTS, PRIMARY KEY (organization_id, square_customer_id))
"""
# Constants of realistic width (three rows in five carry one booking note, as the
# generated data does), in key order: the cheapest way to fill such a table.
WRITE_FLOOR_INSERT_SQL = """
INSERT INTO benchmark_write_floor
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(n / 500), 12, '0'))::uuid,
       'C' || lpad(n::text, 25, '0'), 'Olivia', 'Nguyen', 'olivia.nguyen.' || n || '@example.com', '+12125550123',
       t - interval '400 days', lpad(to_hex(n), 14, '0'), 'L0123456789AB', t - interval '20 days',
       t - interval '19 days', 3, 1, 0, 0, 15000, 2000, 2, 7500,
       CASE WHEN n %% 5 < 3
            THEN '[{"booking_id": "0123456789abcd", "start_at": "2026-05-20T15:00:00+00:00",
                    "customer_note": "Prefers a quiet room", "seller_note": null}]'::jsonb
            ELSE '[]'::jsonb END,
       'TM0123456789abcd', '0123456789ABCDEFGHJKMNPQ', 1, false, NULL, NULL, 0, 0, 'ACTIVE', t, t
FROM generate_series(1, %(rows)s::int) AS n, (SELECT now() AS t) AS clock
"""

# --- the 3% change: what an hour of syncing does to a customer ------------------------
# Every changed customer gets a row stamped inside the window (now, or 30-80 days back
# for late syncs), so `recent` sees it; hard deletes and moves also touch the client
# row, as an application merging or cleaning up a customer does.

CHANGED_CUSTOMERS_SQL = """
CREATE TEMP TABLE benchmark_changes AS
SELECT organization_id, square_customer_id, kind,
       coalesce(lead(square_customer_id) OVER same_organization,
                first_value(square_customer_id) OVER same_organization) AS move_to
FROM (
    SELECT organization_id, square_customer_id,
           CASE WHEN r < 0.45 THEN 'touch' WHEN r < 0.70 THEN 'late' WHEN r < 0.95 THEN 'delete' ELSE 'move' END
               AS kind
    FROM (SELECT organization_id, square_customer_id, random() AS r, random() AS pick
          FROM square_existing_clients OFFSET 0) AS drawn
    WHERE pick < %(share)s::float8
) AS chosen
WINDOW same_organization AS (PARTITION BY organization_id ORDER BY square_customer_id)
"""

NOW_STAMP = "%(now)s::timestamptz + interval '50 minutes' * random()"
LATE_STAMP = "%(now)s::timestamptz - interval '30 days' - interval '50 days' * random()"


def one_row_per_customer(table: str, alias: str, kind: str, order: str, where: str = "", extra: str = "") -> str:
    """A subquery ``pick`` of one ``table`` row (organization_id, id{extra}) per changed
    customer of ``kind``, the first by ``order``."""
    return f"""(SELECT DISTINCT ON ({alias}.organization_id, {alias}.square_customer_id) {alias}.organization_id,
                      {alias}.id{extra}
              FROM {table} AS {alias} JOIN benchmark_changes AS ch USING (organization_id, square_customer_id)
              WHERE ch.kind = '{kind}'{where}
              ORDER BY {alias}.organization_id, {alias}.square_customer_id, {order}) AS pick"""


CHANGE_STATEMENTS = {
    "bookings updated now": f"""
        UPDATE bookings AS b
        SET status = CASE b.status WHEN 'PENDING' THEN 'ACCEPTED'
                                   WHEN 'ACCEPTED' THEN CASE WHEN b.start_at > %(now)s THEN 'CANCELLED_BY_CUSTOMER'
                                                             ELSE 'NO_SHOW' END
                                   ELSE 'ACCEPTED' END,
            seller_note = 'Status corrected by the front desk',
            updated_at = {NOW_STAMP}
        FROM {one_row_per_customer("bookings", "b", "touch", "b.start_at DESC")}
        WHERE b.organization_id = pick.organization_id AND b.id = pick.id""",
    "clients updated now": f"""
        UPDATE square_existing_clients AS c
        SET phone_number = '+1646' || lpad(floor(random() * 10000000)::text, 7, '0'), updated_at = {NOW_STAMP}
        FROM benchmark_changes AS ch
        WHERE c.organization_id = ch.organization_id AND c.square_customer_id = ch.square_customer_id
          AND (ch.kind IN ('delete', 'move')
               OR (ch.kind = 'touch' AND NOT EXISTS (
                       SELECT 1 FROM bookings AS b
                       WHERE b.organization_id = c.organization_id
                         AND b.square_customer_id = c.square_customer_id)))""",
    "bookings and payments synced late": f"""
        WITH late_bookings AS (
            INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,
                                  seller_note, created_at, updated_at)
            SELECT ch.organization_id, 'late' || substr(md5(ch.organization_id::text || ch.square_customer_id), 1, 10),
                   ch.square_customer_id,
                   (SELECT min(l.square_location_id) FROM locations AS l WHERE l.organization_id = ch.organization_id),
                   'ACCEPTED', ch.stamp - interval '2 hours', 'Walk-in, entered later', ch.stamp - interval '3 hours',
                   ch.stamp
            FROM (SELECT *, {LATE_STAMP} AS stamp FROM benchmark_changes WHERE kind = 'late' OFFSET 0) AS ch
            RETURNING organization_id, id, square_customer_id, location_id, start_at, updated_at
        )
        INSERT INTO payments (organization_id, id, square_customer_id, location_id, booking_id, status,
                              amount_cents, tip_cents, created_at, updated_at)
        SELECT organization_id, 'late' || substr(md5(organization_id::text || id), 1, 25), square_customer_id,
               location_id, id, 'COMPLETED', 6550, 1000, start_at + interval '1 hour', updated_at
        FROM late_bookings""",
    "payments refunded, synced late": f"""
        UPDATE payments AS p
        SET refunded_cents = p.amount_cents / 2, updated_at = {LATE_STAMP}
        FROM {one_row_per_customer("payments", "p", "late", "p.created_at",
                                   where=" AND p.status = 'COMPLETED' AND p.id NOT LIKE 'late%%'")}
        WHERE p.organization_id = pick.organization_id AND p.id = pick.id""",
    "bookings deleted": f"""
        DELETE FROM bookings AS b
        USING {one_row_per_customer("bookings", "b", "delete", "b.start_at")}
        WHERE b.organization_id = pick.organization_id AND b.id = pick.id""",
    "payments deleted": f"""
        DELETE FROM payments AS p
        USING {one_row_per_customer("payments", "p", "delete", "p.created_at DESC")}
        WHERE p.organization_id = pick.organization_id AND p.id = pick.id""",
    "bookings moved to another customer": f"""
        UPDATE bookings AS b
        SET square_customer_id = pick.move_to, updated_at = {NOW_STAMP}
        FROM {one_row_per_customer("bookings", "b", "move", "b.start_at DESC",
                                   where=" AND ch.move_to <> ch.square_customer_id", extra=", ch.move_to")}
        WHERE b.organization_id = pick.organization_id AND b.id = pick.id""",
}

VIEW_QUERY = sql.SQL("SELECT * FROM {} WHERE organization_id = %s AND day >= %s").format(sql.Identifier(VIEW_NAME))


# --- figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    label: str
    value: float | None
    unit: str  # "s", "ms", "MB", "x" (a ratio), "%", "" (a count), "1/1" (a count per unit)
    note: str = ""

    def text(self) -> str:
        if self.value is None:
            return "n/a"
        if self.unit == "s":
            return f"{self.value:,.2f} s"
        if self.unit == "ms":
            return f"{self.value:,.1f} ms"
        if self.unit == "MB":
            return f"{self.value:,.0f} MB"
        if self.unit == "x":
            return f"{self.value:.2f}×"
        if self.unit == "%":
            return f"{self.value:.1f} %"
        if self.unit == "1/1":  # a count per something: events per organization
            return f"{self.value:,.2f}"
        return f"{self.value:,.0f}"


class Figures(dict):
    """One size's figures by key, in the order they were measured; each printed at once."""

    def add(self, key: str, label: str, value: float | None, unit: str = "", note: str = "") -> float | None:
        self[key] = Figure(label, value, unit, note)
        print(f"  {label:<62} {self[key].text():>14}" + (f"   {note}" if note else ""), flush=True)
        return value


# The targets at the largest size: (figure key, bound, how it reads).
TARGETS = (
    ("recent_changed_ratio", 1.0, "≤ 1.0× floor"),
    ("recent_unchanged_ratio", 0.5, "≤ 0.5× floor"),
    ("full_ratio", 3.0, "≤ 3.0× floor"),
    ("full_two_ratio", 3.0, "≤ 3.0× floor"),
    ("noop_full_ratio", 0.7, "≤ 0.7× full"),
    ("noop_full_rows", 0, "0 rows"),
    ("audit_full_ratio", 0.25, "≤ 25% of the refresh"),
    ("audit_recent_ratio", 0.25, "≤ 25% of the refresh"),
    ("tick_overhead_ratio", 0.25, "≤ 25% of SQL time"),
    ("view_p95", 50.0, "≤ 50 ms"),
    ("view_largest", 50.0, "≤ 50 ms"),
    ("process_memory", 500.0, "≤ 500 MB"),
    ("change_log_full_share", 0.05, "≤ 5% of the full refresh (the change log's target)"),
    ("change_log_nightly_share", 0.05, "≤ 5% of the full refresh (the change log's target)"),
    ("change_log_recent_share", 0.05, "≤ 5% of the recent refresh (the change log's target)"),
)
GROWING_UNITS = ("s", "ms", "MB", "")


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def nearest_rank(values: Sequence[float], percentile: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * percentile // 100) - 1)] if ordered else float("nan")


# --- memory ----------------------------------------------------------------------------


def process_peak_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status(pid: int) -> dict[str, float]:
    """VmHWM and RssAnon of a local process in MB; empty when it is not readable here."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    fields = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "RssAnon"):
            fields[name] = int(rest.split()[0]) / 1024
    return fields


class BackendMemory:
    """Samples the memory of the scratch database's PostgreSQL backends (parallel workers
    included) from /proc, every 0.2 s, on a connection of its own: the server's side of
    peak memory, which getrusage cannot see. Works only when the server runs on this
    machine; otherwise the peaks stay None."""

    def __init__(self, url: str):
        self.url = url
        self.peak_private_mb: float | None = None  # RssAnon: work_mem, hash tables, sorts
        self.peak_resident_mb: float | None = None  # VmHWM: includes shared buffers touched
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "BackendMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.2):
                pids = [row[0] for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
                for pid in pids:
                    status = proc_status(pid)
                    if "RssAnon" in status:
                        self.peak_private_mb = max(self.peak_private_mb or 0, status["RssAnon"])
                    if "VmHWM" in status:
                        self.peak_resident_mb = max(self.peak_resident_mb or 0, status["VmHWM"])


# --- the steps -------------------------------------------------------------------------


def elapsed_since(started: float) -> float:
    return time.perf_counter() - started


def reset_schema(conn: psycopg.Connection) -> None:
    """An empty public schema: each size starts from nothing in the one scratch database."""
    conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
    conn.execute("CREATE SCHEMA public")


def settle(conn: psycopg.Connection) -> float:
    """VACUUM (ANALYZE) between measured steps, untimed in the figures: what autovacuum
    does in the hour between two scheduled runs, done now so that it seldom has work left
    while a measured step runs."""
    started = time.perf_counter()
    conn.execute("VACUUM (ANALYZE)")
    return elapsed_since(started)


def generate(conn: psycopg.Connection, figures: Figures, clients: int, organizations: int, anchor: datetime,
             seed: int) -> None:
    """The issue's data shape, generated by PostgreSQL itself in one INSERT ... SELECT per
    table (Python only sends the statements)."""
    params = {
        "clients": clients, "organizations": organizations, "skew": SIZE_SKEW, "seed": seed, "anchor": anchor,
        "history": HISTORY, "history_start": anchor - HISTORY, "bookings_per_client": BOOKINGS_PER_CLIENT,
        "payments_per_booking": PAYMENTS_PER_BOOKING, "referral_share": REFERRAL_SHARE,
    }
    started = time.perf_counter()
    conn.execute("SELECT setseed(%s)", (1 / (seed + 1),))
    for statement in (ORGANIZATION_SIZES_SQL, ORGANIZATIONS_SQL, LOCATIONS_SQL, CLIENTS_SQL, BOOKINGS_SQL,
                      PAYMENTS_SQL, REFERRALS_SQL):
        conn.execute(statement, params)
    conn.execute("DROP TABLE benchmark_organizations")
    figures.add("generate_seconds", "generate data (INSERT ... SELECT)", elapsed_since(started), "s")


def describe_data(conn: psycopg.Connection, figures: Figures, anchor: datetime) -> None:
    counts = {table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
              for table in ("organizations", "square_existing_clients", "bookings", "payments", "referral_profiles")}
    figures.add("organizations", "organizations", counts["organizations"])
    figures.add("clients", "clients", counts["square_existing_clients"])
    figures.add("bookings", "bookings", counts["bookings"])
    figures.add("payments", "payments", counts["payments"])
    figures.add("referral_profiles", "referral rows", counts["referral_profiles"])
    (largest,) = conn.execute(
        "SELECT max(clients) FROM (SELECT count(*) AS clients FROM square_existing_clients GROUP BY organization_id) s"
    ).fetchone()
    figures.add("largest_organization", "clients of the largest organization", largest)
    (in_window,) = conn.execute(IN_WINDOW_SQL, {"since": anchor - RECENT_WINDOW}).fetchone()
    figures.add("in_window_share", "customers with a row in the 90-day window",
                100 * in_window / max(1, counts["square_existing_clients"]), "%")
    (size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    figures.add("database_size", "database size (tables and indexes)", size / 2**20, "MB")


def read_floor(conn: psycopg.Connection) -> float:
    """One scan of every source column the metrics read, per table, summed; best of
    FLOOR_REPEATS (parallel scans allowed, as the server is configured)."""
    runs = []
    for _ in range(FLOOR_REPEATS):
        started = time.perf_counter()
        for query in READ_FLOOR_QUERIES.values():
            conn.execute(query).fetchall()
        runs.append(elapsed_since(started))
    return min(runs)


def write_floor(conn: psycopg.Connection, rows: int) -> tuple[float, float]:
    """One plain INSERT (autocommit, so its commit included) of ``rows`` rows into a table
    with customer_analytics's columns and key; best of FLOOR_REPEATS. Also returns the
    table's average row width, to compare with customer_analytics's."""
    runs = []
    for _ in range(FLOOR_REPEATS):
        conn.execute("DROP TABLE IF EXISTS benchmark_write_floor")
        conn.execute(WRITE_FLOOR_TABLE_SQL)
        started = time.perf_counter()
        conn.execute(WRITE_FLOOR_INSERT_SQL, {"rows": rows})
        runs.append(elapsed_since(started))
    (width,) = conn.execute("SELECT avg(pg_column_size(t.*)) FROM benchmark_write_floor AS t").fetchone()
    conn.execute("DROP TABLE benchmark_write_floor")
    return min(runs), float(width or 0)


@dataclass
class RefreshPass:
    """One refresh of every batch (its audit before commit timed apart), and the checks
    over every row when they ran after each batch."""

    refresh_seconds: float = 0.0  # the refresh's own work: its transaction minus its audit
    slowest_batch_seconds: float = 0.0
    audit_seconds: float = 0.0  # the audit before commit, inside each batch's transaction
    checks_seconds: float = 0.0
    failing_rows: int = 0
    failed_checks: set[str] = field(default_factory=set)
    results: list[RefreshResult] = field(default_factory=list)

    def total(self, attribute: str) -> int:
        return sum(result.total(attribute) for result in self.results)

    @property
    def rows_written(self) -> int:
        return self.total("rows_inserted") + self.total("rows_updated")

    @property
    def rows_recomputed(self) -> int:
        return sum(result.rows_recomputed for result in self.results)

    def batches_note(self) -> str:
        return f"slowest batch {self.slowest_batch_seconds:.2f} s"

    def audit_note(self) -> str:
        audited = [r.audit for r in self.results if r.audit is not None]
        failed = sorted({o.check_name for a in audited for o in a.outcomes if not o.passed})
        return f"failed: {failed}" if failed else "all pass"

    def checks_note(self) -> str:
        return f"{self.failing_rows} failing rows {sorted(self.failed_checks)}" if self.failed_checks else "all pass"


def refresh_all(conn: psycopg.Connection, batches: Sequence[Sequence[str]], mode: str, as_of: datetime,
                with_checks: bool = False) -> RefreshPass:
    """Every batch refreshed in turn, as the schedule's runs do (one at a time here), its
    audit before commit timed apart; ``with_checks``: each batch's eight checks over every
    row right after its commit (what every run evaluated before the audit), timed apart."""
    parameters = RefreshParameters(mode=mode, as_of=as_of)
    done = RefreshPass()
    for batch in batches:
        started = time.perf_counter()
        result = refresh_customer_analytics(conn, batch, parameters)
        done.results.append(result)
        audit = result.audit.seconds if result.audit else 0.0
        seconds = elapsed_since(started) - audit
        done.refresh_seconds += seconds
        done.audit_seconds += audit
        done.slowest_batch_seconds = max(done.slowest_batch_seconds, seconds)
        if with_checks:
            started = time.perf_counter()
            outcomes = evaluate_checks(conn, list(batch))
            done.checks_seconds += elapsed_since(started)
            for outcome in outcomes:
                if not outcome.passed:
                    done.failing_rows += outcome.failures.total
                    done.failed_checks.add(outcome.check_name)
    return done


def refresh_two_at_once(url: str, batches: Sequence[Sequence[str]], as_of: datetime) -> tuple[float, int]:
    """A full refresh of every batch, two at a time as production's pool runs the nightly's
    refresh steps (dagster.yaml's pool limit, 2): that many connections take the batches in
    partition order. Returns the wall time and the rows inserted."""
    pending = iter(batches)
    taking = threading.Lock()
    inserted = []
    errors = []
    parameters = RefreshParameters(mode="full", as_of=as_of)

    def worker() -> None:
        try:
            with connect(url, SessionLimits()) as conn:
                while True:
                    with taking:
                        # After a worker's error the others stop too: the error is the result.
                        batch = None if errors else next(pending, None)
                    if batch is None:
                        return
                    inserted.append(refresh_customer_analytics(conn, batch, parameters).total("rows_inserted"))
        except Exception as error:  # reported below, in the main thread
            with taking:
                errors.append(error)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(PRODUCTION_POOL_LIMIT)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return elapsed_since(started), sum(inserted)


# The data-modifying CTE by which the refresh statements log segment changes (docs/contract.md, Segment movements).
SEGMENT_LOG_CTE = re.compile(r",\nsegment_changes AS \(\n.*?\n\)\n", re.DOTALL)
SEGMENT_LOGGING_FILES = (refresh_module.UPSERT_TEMPLATE_SQL, refresh_module.UPDATE_SEGMENTS_SQL)
# The pipeline's tables, as one SQL list: what a full refresh into an empty table starts
# from once they are truncated (the A/B in a rolled-back transaction, the two-at-once full).
PIPELINE_TABLES = sql.SQL(", ").join(map(sql.Identifier, (
    "customer_analytics", "customer_analytics_source_fingerprints", "customer_segment_changes",
    "customer_analytics_refresh_state",
)))


@contextmanager
def without_segment_change_log() -> Iterator[None]:
    """The refresh with the change log's CTE cut out of its statements: the B of the A/B
    that prices the log. Fails loudly if the SQL no longer has that shape."""
    original = refresh_module.load_sql

    def load_without_log(path: str) -> str:
        text = original(path)
        if path in SEGMENT_LOGGING_FILES:
            text, cut = SEGMENT_LOG_CTE.subn("\n", text)
            if cut != 1:
                raise RuntimeError(f"{path}: the segment_changes CTE was not found; update the benchmark")
        return text

    refresh_module.load_sql = load_without_log
    try:
        yield
    finally:
        refresh_module.load_sql = original


@dataclass
class ChangeLogCost:
    """The refresh of every batch with and without the change log, side by side."""

    with_log_seconds: float = 0.0
    without_log_seconds: float = 0.0
    change_rows: int = 0

    @property
    def share(self) -> float | None:
        return ratio(self.with_log_seconds - self.without_log_seconds, self.with_log_seconds)


def change_log_cost(conn: psycopg.Connection, batches: Sequence[Sequence[str]], mode: str, as_of: datetime,
                    from_empty: bool) -> ChangeLogCost:
    """Each batch refreshed twice, with and without the change log (alternating which goes
    first), each in a transaction that is rolled back, so both start from the same state;
    ``from_empty``: the pipeline's tables are truncated inside that transaction first."""
    parameters = RefreshParameters(mode=mode, as_of=as_of)
    cost = ChangeLogCost()
    for index, batch in enumerate(batches):
        for with_log in (index % 2 == 0, index % 2 == 1):
            with conn.transaction(force_rollback=True):
                if from_empty:
                    conn.execute(sql.SQL("TRUNCATE {}").format(PIPELINE_TABLES))
                started = time.perf_counter()
                if with_log:
                    result = refresh_customer_analytics(conn, batch, parameters)
                    cost.with_log_seconds += elapsed_since(started)
                    cost.change_rows += result.segment_changes
                else:
                    with without_segment_change_log():
                        refresh_customer_analytics(conn, batch, parameters)
                    cost.without_log_seconds += elapsed_since(started)
    # The rolled-back rows are dead tuples the next measured step should not pay for.
    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(PIPELINE_TABLES))
    return cost


def add_change_log_figures(figures: "Figures", name: str, label: str, cost: ChangeLogCost) -> None:
    figures.add(f"change_log_{name}_with", f"{label}, with the change log (A/B)", cost.with_log_seconds, "s",
                f"{cost.change_rows:,} change rows")
    figures.add(f"change_log_{name}_without", f"{label}, without the change log (A/B)", cost.without_log_seconds, "s")
    figures.add(f"change_log_{name}_share", f"change log / {label}", cost.share, "x")


def change_customers(conn: psycopg.Connection, share: float, now: datetime,
                     chosen_sql: str = CHANGED_CUSTOMERS_SQL) -> tuple[int, dict[str, int]]:
    """Changes ``share`` of the customers (or what ``chosen_sql``, which fills
    ``benchmark_changes`` from ``share``, picks) the way an hour of syncing does; returns
    how many customers and the rows each kind of change touched."""
    touched = {}
    with conn.transaction():
        conn.execute(chosen_sql, {"share": share})
        (customers,) = conn.execute("SELECT count(*) FROM benchmark_changes").fetchone()
        for name, statement in CHANGE_STATEMENTS.items():
            touched[name] = conn.execute(statement, {"now": now}).rowcount
        conn.execute("DROP TABLE benchmark_changes")
    return customers, touched


@dataclass
class Tick:
    """What one scheduled tick cost, summed over its runs."""

    runs: int = 0
    failed_runs: int = 0
    first_failure: str | None = None
    wall_seconds: float = 0.0  # the schedule's evaluation and its runs' execution
    schedule_seconds: float = 0.0  # the schedule's evaluation (its own SQL included)
    refresh_sql_seconds: float = 0.0  # the refresh (its audit included) and, in full runs, retention
    audit_seconds: float = 0.0  # the audit before commit, inside the refresh's transaction
    checks_seconds: float = 0.0  # the two checks evaluated after the commit (in the refresh step)
    view_sql_seconds: float = 0.0  # keeping the view's definition current (in the refresh step)
    events: int = 0  # Dagster events stored
    events_by_type: Counter = field(default_factory=Counter)
    rows_recomputed: int = 0
    organizations: int = 0  # organizations the runs refreshed

    @property
    def sql_seconds(self) -> float:
        return self.refresh_sql_seconds + self.checks_seconds + self.view_sql_seconds

    @property
    def orchestration_seconds(self) -> float:
        return self.wall_seconds - self.sql_seconds


# Per run: its events by type.
RUN_EVENTS_SQL = """
SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = ANY(%(runs)s) GROUP BY 1
"""

# The database work of the refresh job's steps: each function, looked up in the module
# that calls it, is timed while the runs execute in this process.
ASSET_MODULE = "customer_analytics_pipeline.defs.customer_analytics_asset"
# The warehouse function both the asset and the command line call for a batch.
BATCH_REFRESH_MODULE = "customer_analytics_pipeline.warehouse.batch_refresh"
DATABASE_WORK = {
    "refresh_sql_seconds": ((BATCH_REFRESH_MODULE, "refresh_customer_analytics"),
                            (BATCH_REFRESH_MODULE, "delete_expired_segment_changes")),
    "audit_seconds": (("customer_analytics_pipeline.warehouse.refresh", "audit_organizations"),),
    "checks_seconds": ((ASSET_MODULE, "checks_after_publish"),),
    "view_sql_seconds": ((BATCH_REFRESH_MODULE, "ensure_view"),),
}


@contextmanager
def timed_database_work(tick: "Tick") -> Iterator[None]:
    """Adds the time spent in each DATABASE_WORK function to its figure of ``tick`` while
    the block runs; fails loudly when the pipeline no longer calls one by that name."""
    patched = []
    for figure, functions in DATABASE_WORK.items():
        for module_name, name in functions:
            module = sys.modules.get(module_name) or __import__(module_name, fromlist=[name])
            original = getattr(module, name)  # AttributeError: update DATABASE_WORK

            def timed(*args, __original=original, __figure=figure, **kwargs):
                started = time.perf_counter()
                try:
                    return __original(*args, **kwargs)
                finally:
                    setattr(tick, __figure, getattr(tick, __figure) + elapsed_since(started))

            setattr(module, name, timed)
            patched.append((module, name, original))
    try:
        yield
    finally:
        for module, name, original in patched:
            setattr(module, name, original)


# The runs' DEBUG lines on stderr drown the figures; the instance's event log keeps them all.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class BenchmarkInstance:
    """A throwaway Dagster instance, the libpq URL of its storage database as reached
    directly, and how the instance reaches it."""

    instance: DagsterInstance
    storage_url: str
    storage_path: str  # "through PgBouncer" or "direct"


@contextmanager
def dagster_storage(url: str) -> Iterator[str]:
    """A Dagster storage database of its own next to the benchmark's (production keeps
    Dagster's storage in PostgreSQL too), as a libpq URL; dropped afterwards."""
    name = f"{conninfo_to_dict(url)['dbname']}_dagster"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(url, dbname=name)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def instance_on(storage_url: str, storage_path: str, direct_url: str) -> Iterator[BenchmarkInstance]:
    overrides = {"storage": {"postgres": {"postgres_url": sqlalchemy_url(storage_url)}}}
    with instance_for_test(overrides=overrides) as instance:
        yield BenchmarkInstance(instance, direct_url, storage_path)


@contextmanager
def benchmark_instances(url: str, keys: Sequence[str]) -> Iterator[dict[str, BenchmarkInstance]]:
    """Two throwaway instances on one PostgreSQL storage database of its own, "pgbouncer"
    reaching it through PgBouncer (session pooling) as README's production runbook has
    it and "direct" as Dagster's default; the organization partitions registered, and the
    environment the runbook gives Dagster set (where not set already). Without pgbouncer
    installed, "pgbouncer" is the direct one too (and says so)."""
    for name, value in DAGSTER_RUN_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    with ExitStack() as stack:
        storage_url = stack.enter_context(dagster_storage(url))
        direct = stack.enter_context(instance_on(storage_url, "direct", storage_url))
        direct.instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, list(keys))
        try:
            bouncer = stack.enter_context(running_pgbouncer(storage_url))
        except PgBouncerUnavailable as missing:
            print(f"  Dagster storage reached directly: {missing}", flush=True)
            yield {"direct": direct, "pgbouncer": direct}
            return
        yield {"direct": direct, "pgbouncer": stack.enter_context(
            instance_on(bouncer.url(), "through PgBouncer", storage_url))}


@contextmanager
def benchmark_instance(url: str, keys: Sequence[str]) -> Iterator[BenchmarkInstance]:
    """The instance of ``benchmark_instances`` set up as README's production runbook has it."""
    with benchmark_instances(url, keys) as instances:
        yield instances["pgbouncer"]


def execute_tick(bench: BenchmarkInstance, definitions: dagster.Definitions, schedule_name: str,
                 scheduled: datetime) -> Tick:
    """One tick of a schedule end to end: its evaluation at ``scheduled`` (with the
    definitions' resources) and each of the run requests it yields executed in process,
    one after another, through the instance. Wall time is the evaluation plus the runs;
    reading the figures back from the event log afterwards is not in it. Building the
    definitions (a code server does it once) is left out."""
    job = definitions.resolve_job_def(REFRESH_JOB_NAME)
    schedule = definitions.resolve_schedule_def(schedule_name)
    tick = Tick()
    run_ids = []
    with timed_database_work(tick):
        started = time.perf_counter()
        # Closed at once: left to the garbage collector, the context's own instance resets
        # Dagster's current defs-state storage out of order.
        with build_schedule_context(instance=bench.instance, scheduled_execution_time=scheduled,
                                    resources=definitions.resources) as context:
            requests = schedule.evaluate_tick(context).run_requests or []
        tick.schedule_seconds = tick.wall_seconds = elapsed_since(started)
        for request in requests:
            started = time.perf_counter()
            result = job.execute_in_process(run_config={**request.run_config, **QUIET_CONSOLE}, tags=request.tags,
                                            instance=bench.instance, raise_on_error=False)
            tick.wall_seconds += elapsed_since(started)
            run_ids.append(result.run_id)
            tick.runs += 1
            if not result.success:
                tick.failed_runs += 1
                failure = result.get_run_failure_event()
                tick.first_failure = tick.first_failure or (failure.message if failure else "run failed")
            # Every partition's materialization carries the batch's totals: read them once.
            materializations = [event.step_materialization_data.materialization
                                for event in result.get_asset_materialization_events()
                                if event.asset_key.path == [CUSTOMER_ANALYTICS_TABLE]]
            tick.organizations += len(materializations)
            batch = materializations[0].metadata if materializations else {}
            tick.rows_recomputed += batch["batch_rows_recomputed"].value if "batch_rows_recomputed" in batch else 0
    with psycopg.connect(bench.storage_url) as storage:
        for event_type, count in storage.execute(RUN_EVENTS_SQL, {"runs": run_ids}):
            tick.events_by_type[event_type or "log message"] += count
    tick.events = sum(tick.events_by_type.values())
    return tick


def dagster_tick(url: str, keys: Sequence[str], settings: Settings, scheduled: datetime) -> Tick:
    """One hourly tick end to end through Dagster (``execute_tick``): the schedule's own run
    requests (partition-range tags, mode recent, as_of = the tick) for organization
    partitions registered in a throwaway instance (``benchmark_instance``)."""
    definitions = build_definitions(settings, PostgresResource(database_url=url))
    with benchmark_instance(url, keys) as bench:
        return execute_tick(bench, definitions, HOURLY_SCHEDULE, scheduled)


def view_latencies(conn: psycopg.Connection, count: int, as_of: datetime) -> tuple[list[float], float]:
    """The dashboard's one-organization, last-30-days query (ms) over ``count``
    organizations spread over the size ranking, the largest first; one untimed warm-up."""
    ranked = [row[0] for row in conn.execute(
        "SELECT organization_id::text FROM square_existing_clients GROUP BY 1 ORDER BY count(*) DESC, 1")]
    step = max(1, len(ranked) / count)
    chosen = list(dict.fromkeys(ranked[int(i * step)] for i in range(min(count, len(ranked)))))
    since = (as_of - timedelta(days=30)).date()
    conn.execute(VIEW_QUERY, (chosen[0], since)).fetchall()
    times = []
    for organization_id in chosen:
        started = time.perf_counter()
        conn.execute(VIEW_QUERY, (organization_id, since)).fetchall()
        times.append(1000 * elapsed_since(started))
    return times, times[0]


# --- one size --------------------------------------------------------------------------


def run_size(url: str, clients: int, args: argparse.Namespace) -> Figures:
    """Every figure for one size, measured in one pass over one data set."""
    size_started = time.perf_counter()
    figures = Figures()
    # Whole hours in the past: every stamp, the ticks' as_of included, precedes the
    # refreshes' now(), as in production.
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    with connect(url, SessionLimits()) as conn, BackendMemory(url) as backend:
        reset_schema(conn)
        create_source_tables(conn)
        generate(conn, figures, clients, args.organizations, anchor, args.seed)
        started = time.perf_counter()
        conn.execute("SELECT set_config('maintenance_work_mem', '256MB', false)")
        apply_source_indexes(conn)
        conn.execute("RESET maintenance_work_mem")
        conn.execute("SELECT set_config('statement_timeout', %s, false)",
                     (f"{SessionLimits().statement_timeout_seconds}s",))
        figures.add("index_seconds", "optional source indexes (CONCURRENTLY)", elapsed_since(started), "s")
        migrate(conn)
        figures.add("vacuum_seconds", "VACUUM (ANALYZE) after the load", settle(conn), "s")
        describe_data(conn, figures, anchor)
        keys = organization_keys(conn)
        batches = [keys[start:start + args.batch_size] for start in range(0, len(keys), args.batch_size)]
        figures.add("batches", f"batches of {args.batch_size} organizations", len(batches))
        # The schedules balance runs by customers: as many per run as the batches above
        # hold on average (50,000, the default, at the default 1M clients).
        settings = Settings(customers_per_run=max(1, -(-figures["clients"].value // len(batches))))

        read = figures.add("read_floor", "read floor: one scan of every source column read", read_floor(conn), "s")
        write_seconds, floor_width = write_floor(conn, figures["clients"].value)
        write = figures.add("write_floor", "write floor: one INSERT of N rows shaped like the table", write_seconds,
                            "s")
        floor = figures.add("floor", "floor = read + write", read + write, "s")

        full = refresh_all(conn, batches, "full", anchor, with_checks=True)
        figures.add("full_seconds", "full refresh, empty table", full.refresh_seconds, "s",
                    f"{full.total('rows_inserted'):,} rows inserted, {full.batches_note()}")
        figures.add("full_ratio", "full refresh / floor", ratio(full.refresh_seconds, floor), "x")
        figures.add("audit_full_seconds", "audit before commit in each batch of the full refresh", full.audit_seconds,
                    "s", full.audit_note())
        figures.add("audit_full_ratio", "audit / full refresh", ratio(full.audit_seconds, full.refresh_seconds), "x")
        figures.add("checks_full_seconds", "checks over every row after each batch of the full refresh",
                    full.checks_seconds, "s", full.checks_note())
        figures.add("checks_full_ratio", "checks / full refresh", ratio(full.checks_seconds, full.refresh_seconds),
                    "x")
        (width,) = conn.execute("SELECT avg(pg_column_size(t.*)) FROM customer_analytics AS t").fetchone()
        figures.add("row_width", "customer_analytics average row (bytes)", float(width or 0), "",
                    f"write floor table: {floor_width:.0f}")
        settle(conn)
        # Two quarters of the batches each (keeps the run under 25 minutes): the first full,
        # which logs every customer's first segment, and the nightly full a day later, which
        # logs the segments that a day's passing moved (its as_of is ahead of now(); only
        # the segments depend on it). Fewer than three batches: the last one serves both.
        add_change_log_figures(figures, "full", "full refresh, empty table",
                               change_log_cost(conn, batches[::4], "full", anchor, from_empty=True))
        add_change_log_figures(figures, "nightly", "nightly full, a day later",
                               change_log_cost(conn, batches[2::4] or batches[-1:], "full",
                                               anchor + timedelta(days=1), from_empty=False))

        noop = refresh_all(conn, batches, "full", anchor)
        figures.add("noop_full_seconds", "full refresh, nothing changed", noop.refresh_seconds, "s",
                    noop.batches_note())
        figures.add("noop_full_rows", "no-op full: rows written (inserted + updated)", noop.rows_written)
        figures.add("noop_full_ratio", "no-op full / initial full", ratio(noop.refresh_seconds, full.refresh_seconds),
                    "x")
        settle(conn)

        unchanged = refresh_all(conn, batches, "recent", anchor + timedelta(hours=1))
        figures.add("recent_unchanged_seconds", "recent, nothing changed, 1 h later", unchanged.refresh_seconds, "s",
                    unchanged.batches_note())
        figures.add("recent_unchanged_recomputed", "recent, nothing changed: customers recomputed",
                    unchanged.rows_recomputed)
        figures.add("recent_unchanged_ratio", "recent, nothing changed / floor",
                    ratio(unchanged.refresh_seconds, floor), "x")

        customers, touched = change_customers(conn, args.change_share, anchor + timedelta(hours=1))
        figures.add("changed_customers", f"customers changed ({args.change_share:.0%})", customers, "",
                    "; ".join(f"{name}: {rows:,}" for name, rows in touched.items()))
        conn.execute("ANALYZE")
        add_change_log_figures(figures, "recent", "recent after the change",
                               change_log_cost(conn, batches[::2], "recent", anchor + timedelta(hours=2),
                                               from_empty=False))
        recent = refresh_all(conn, batches, "recent", anchor + timedelta(hours=2), with_checks=True)
        changed = f"recent after {args.change_share:.0%}"
        figures.add("recent_changed_seconds", f"{changed} changed, 2 h later", recent.refresh_seconds, "s",
                    recent.batches_note())
        figures.add("recent_changed_recomputed", f"{changed}: customers recomputed", recent.rows_recomputed)
        figures.add("recent_changed_rows", f"{changed}: rows written", recent.rows_written)
        figures.add("recent_changed_ratio", f"{changed} / floor", ratio(recent.refresh_seconds, floor), "x")
        figures.add("audit_recent_seconds", "audit before commit in each batch of the recent refresh",
                    recent.audit_seconds, "s", recent.audit_note())
        figures.add("audit_recent_ratio", "audit / recent refresh", ratio(recent.audit_seconds, recent.refresh_seconds),
                    "x")
        figures.add("checks_recent_seconds", "checks over every row after each batch of the recent refresh",
                    recent.checks_seconds, "s", recent.checks_note())
        figures.add("checks_recent_ratio", "checks / recent refresh",
                    ratio(recent.checks_seconds, recent.refresh_seconds), "x")
        settle(conn)

        tick = dagster_tick(url, keys, settings, anchor + timedelta(hours=3))
        orchestration = tick.orchestration_seconds
        figures.add("tick_seconds", "hourly tick through Dagster, wall", tick.wall_seconds, "s",
                    f"{tick.runs} runs, {tick.failed_runs} failed" + (f": {tick.first_failure}" if tick.failed_runs
                                                                        else "")
                    + f"; up to {settings.customers_per_run:,} customers per run")
        figures.add("tick_refresh_seconds", "tick: refresh SQL (its audit included)", tick.refresh_sql_seconds, "s",
                    f"{tick.rows_recomputed:,} customers recomputed")
        figures.add("tick_audit_seconds", "tick: audit before commit", tick.audit_seconds, "s")
        figures.add("tick_checks_seconds", "tick: check SQL after commit", tick.checks_seconds, "s")
        figures.add("tick_overhead_seconds", "tick: orchestration = wall - (refresh SQL + checks + view)",
                    orchestration, "s", f"schedule evaluation {tick.schedule_seconds:.2f} s")
        figures.add("tick_overhead_ratio", "tick: orchestration / (refresh SQL + checks)",
                    ratio(orchestration, tick.sql_seconds), "x")
        figures.add("tick_events", "tick: Dagster events stored", tick.events, "",
                    f"{tick.events / max(1, tick.runs):.0f} per run")

        times, largest = view_latencies(conn, args.view_organizations, anchor + timedelta(hours=3))
        figures.add("view_queries", "view, one organization, last 30 days: queries", len(times))
        figures.add("view_p50", "view p50", statistics.median(times), "ms")
        figures.add("view_p95", "view p95", nearest_rank(times, 95), "ms")
        figures.add("view_largest", "view, largest organization", largest, "ms")

        # Last, as it starts again from empty tables: the full as production runs it.
        conn.execute(sql.SQL("TRUNCATE {}").format(PIPELINE_TABLES))
        seconds, inserted = refresh_two_at_once(url, batches, anchor)
        figures.add("full_two_seconds", "full refresh, empty table, two batches at once", seconds, "s",
                    f"{inserted:,} rows inserted; the pool's limit in dagster.yaml")
        figures.add("full_two_speedup", "full refresh: one at a time / two at once",
                    ratio(full.refresh_seconds, seconds), "x")
        figures.add("full_two_ratio", "full refresh, two batches at once / floor", ratio(seconds, floor), "x")

        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        main_backend = proc_status(pid).get("VmHWM")
    figures.add("process_memory", "peak memory: benchmark process (so far)", process_peak_mb(), "MB")
    figures.add("backend_private_memory", "peak memory: a PostgreSQL backend, private", backend.peak_private_mb,
                "MB", "sampled RssAnon")
    figures.add("backend_resident_memory", "peak memory: a PostgreSQL backend, resident", backend.peak_resident_mb,
                "MB", f"VmHWM, shared buffers included (main backend {main_backend or 0:.0f} MB)")
    figures.add("size_seconds", "this size, start to end", elapsed_since(size_started), "s")
    return figures


# --- the machine and the report --------------------------------------------------------


def machine(conn: psycopg.Connection) -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    memory = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    settings = dict(conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem',"
        " 'max_parallel_workers_per_gather', 'jit', 'synchronous_commit', 'max_wal_size')").fetchall())
    (version,) = conn.execute("SELECT version()").fetchone()
    (collation,) = conn.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()").fetchone()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "RAM": f"{memory:.1f} GiB",
        "PostgreSQL": version.split(" on ")[0],
        "server settings": ", ".join(f"{name}={value}" for name, value in sorted(settings.items())),
        "database collation": collation,
        "Python / Dagster": f"{platform.python_version()} / {dagster.__version__}",
        "load average at start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "code": code_version(),
    }


def code_version() -> str:
    """The code measured: the commit of the checkout the package was imported from (and
    whether its package differed from it), and the refresh's own code version (a hash of
    its SQL), which identifies the refresh even outside a git checkout."""
    package = Path(customer_analytics_pipeline.__file__).resolve().parent

    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(package), *arguments], capture_output=True, text=True,
                              check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "not a git checkout"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    dirty = " with uncommitted changes to the package" if changed else ""
    return f"{commit}{dirty}; refresh code version {REFRESH_CODE_VERSION[:12]}"


def size_name(clients: int) -> str:
    return f"{clients // 1_000_000}M" if clients % 1_000_000 == 0 else (
        f"{clients // 1000}k" if clients % 1000 == 0 else f"{clients:,}")


def report_text(command: str, info: dict[str, str], sizes: Sequence[int], results: Sequence[Figures],
                total_seconds: float) -> str:
    """The generated part of docs/performance.md: machine, figures per size, growth,
    the issue's targets at the largest size, and how each figure is measured."""
    names = [size_name(clients) for clients in sizes]
    growth = len(results) > 1
    lines = [
        REPORT_BEGIN,
        "## Measured figures",
        "",
        f"`{command}`: {', '.join(names)} clients, total runtime **{total_seconds / 60:.1f} min**.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in info.items()),
        "",
        "| figure | " + " | ".join(names) + (f" | growth {names[0]} → {names[-1]} |" if growth else " |"),
        "|---|" + "---:|" * len(names) + ("---:|" if growth else ""),
    ]
    for key, figure in results[0].items():
        cells = [result[key].text() if key in result else "" for result in results]
        row = f"| {figure.label.strip()} | " + " | ".join(cells) + " |"
        if growth:
            first, last = results[0][key].value, results[-1].get(key, figure).value
            grows = figure.unit in GROWING_UNITS and first and last is not None
            row += f" {last / first:.1f}× |" if grows else " |"
        lines.append(row)
    notes = [(figure.label.strip(), [result[key].note for result in results if key in result and result[key].note])
             for key, figure in results[-1].items()]
    lines += ["", f"Details at {names[-1]}:", ""]
    lines += [f"- {label}: {notes_of[-1]}" for label, notes_of in notes if notes_of]
    largest = results[-1]
    lines += ["", f"Targets at {names[-1]}:", "",
              "| figure | measured | target | met |", "|---|---:|---|---|"]
    for key, bound, reads in TARGETS:
        figure = largest.get(key)
        if figure is None or figure.value is None:
            continue
        met = "yes" if figure.value <= bound else "no"
        lines.append(f"| {figure.label.strip()} | {figure.text()} | {reads} | {met} |")
    lines += ["", METHOD, REPORT_END, ""]
    return "\n".join(lines)


METHOD = """How it is measured (`benchmarks/refresh_benchmark.py`, one scratch database, sizes one after another):

- Data: generated inside PostgreSQL (INSERT ... SELECT over generate_series). Organization k of 2,000 has
  clients proportional to 1/k^0.8; 4 bookings per client (customers drawn with a skew, 2% unknown), about
  one payment per two bookings, 10% of clients with a referral row; every `updated_at` uniform over the two
  years before an anchor four hours ago. Then the optional source indexes, `migrate`, VACUUM (ANALYZE).
- Floors: best of 3. Read: one aggregate per source column that `compute_customer_rows.sql` reads, one query
  per table, summed (parallel scans allowed). Write: one INSERT ... SELECT of N constant rows, in key order,
  into a table with `customer_analytics`'s columns and primary key (no other index, no foreign key).
- Refreshes: `refresh_customer_analytics` per batch of 100 organizations in partition order, one batch after
  another, on one connection with the pipeline's session limits. Full at the anchor; a no-op full at the same
  `as_of`; `recent` one hour later; then 3% of customers changed (a booking updated now; a booking and its
  payment inserted and a payment refunded, stamped 30-80 days back; a booking and a payment hard-deleted;
  a booking moved to another customer; deleted-from and moved-from customers' client rows updated now, so
  `recent` can see every change) and `recent` two hours after the anchor. VACUUM (ANALYZE) runs between
  steps (untimed), as autovacuum would in the hour between runs; plain ANALYZE after the change.
- Audit: each batch's audit before commit (the ERROR checks on the rows the transaction wrote and the sample of
  the others, inside the refresh's transaction), timed apart: the refresh's figures are its transaction minus its
  audit. Checks: `evaluate_checks` over every row for each batch right after that batch's commit (what every run
  evaluated after its commit before the audit existed), in the full and in the changed `recent`, side by side.
- Change log: batches refreshed twice more, with the refresh's SQL as committed and with the CTE
  that writes `customer_segment_changes` cut out (alternating which runs first), each in a transaction that is
  rolled back, then VACUUM (ANALYZE) of the pipeline's tables. After the full refresh: every fourth batch as
  a full into an empty table (the pipeline's tables truncated inside the transaction), and the batches
  halfway between them as the nightly full a day later (the segments a day moves); after the change, before
  the measured `recent`, every other batch as that `recent`. Subsets keep the run under 25 minutes. The log's
  cost is (with − without) / with.
- Two batches at once: last, the pipeline's tables truncated, the full refresh into the empty table again with
  as many connections as dagster.yaml's pool limit (2) taking the batches in partition order, as production's
  nightly runs its refresh steps; wall time, no checks.
- Hourly tick: `build_definitions(Settings(customers_per_run=...), PostgresResource(...))` (as many customers
  per run as the refresh batches above hold on average), the organization partitions in a
  throwaway instance whose storage is a PostgreSQL database of its own on the same server, reached through
  PgBouncer with README's production environment (`DAGSTER_EVENT_BATCH_SIZE=1000`,
  `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true`), the `hourly_recent_refresh` schedule evaluated
  at anchor + 3 h, and each of its run requests executed in process, one after another (production's pool lets
  two run at once, each in its own process). Refresh SQL, check SQL and the view's SQL are the time the
  runs spend in the warehouse functions their steps call (timed in process).
- View: one untimed warm-up, then one query per organization over ~60 organizations spread over the size
  ranking, the largest first; p95 is nearest-rank.
- Memory: the benchmark process's `ru_maxrss` (it runs the Dagster runs in process); the PostgreSQL
  backends' RssAnon and VmHWM sampled from /proc every 0.2 s."""


def write_report(path: Path, text: str, begin: str = REPORT_BEGIN, end: str = REPORT_END) -> None:
    """Writes the figures; in an existing report with the markers ``begin`` and ``end``
    (``text`` starts and ends with them), replaces only what they enclose."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in existing and end in existing:
        head, rest = existing.split(begin, 1)
        text = head + text.rstrip("\n") + rest.split(end, 1)[1]
    elif not existing:
        text = "# Performance\n\nFigures of `benchmarks/refresh_benchmark.py` on this project's refresh.\n\n" + text
    else:
        text = existing.rstrip("\n") + "\n\n" + text
    path.write_text(text, encoding="utf-8")


# --- the scratch database and main ------------------------------------------------------


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new database on the server, dropped (its connections too) however the run ends."""
    name = f"ca_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    print(f"scratch database {name}", flush=True)
    try:
        yield make_conninfo(**{**conninfo_to_dict(server_url), "dbname": name})
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        print(f"dropped {name}", flush=True)


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes takes client counts such as 250000,1000000")
    return sizes


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[250_000, 1_000_000],
                        help="client counts, comma-separated (default 250000,1000000)")
    parser.add_argument("--organizations", type=int, default=2000, help="organizations per size (default 2000)")
    parser.add_argument("--batch-size", type=int, default=100,
                        help="organizations per batch of the refreshes (default 100); the tick's runs hold as many "
                             "customers as these batches on average")
    parser.add_argument("--change-share", type=float, default=0.03, help="share of customers changed (default 0.03)")
    parser.add_argument("--view-organizations", type=int, default=60, help="organizations the view is queried for")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-url", default=os.environ.get("DATABASE_URL"),
                        help="libpq URL of the server to create the scratch database on "
                             "(default DATABASE_URL, else the embedded server)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT,
                        help="markdown report to write (default docs/performance.md)")
    args = parser.parse_args(argv)
    if args.organizations < 1 or args.batch_size < 1 or not 0 < args.change_share < 1:
        parser.error("--organizations and --batch-size must be positive, --change-share between 0 and 1")
    return args


def start_benchmark(script: str, server_url: str | None, argv: Sequence[str] | None) -> tuple[str, str]:
    """What both benchmarks do first: quiet Dagster's beta/preview notices, make SIGTERM
    end the run like Ctrl-C (so scratch databases are still dropped), and return the
    server's URL (``server_url``, else the embedded server) and the command as run,
    minus that URL (it may hold a password)."""
    for warning in (dagster.BetaWarning, dagster.PreviewWarning):
        warnings.filterwarnings("ignore", category=warning)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    server = server_url or embedded_database_url(load_settings().embedded_data_dir)
    command = " ".join([f"python benchmarks/{script}", *(
        "<url>" if "://" in argument or "host=" in argument else argument
        for argument in (argv if argv is not None else sys.argv[1:]))])
    return server, command


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    server, command = start_benchmark("refresh_benchmark.py", args.server_url, argv)
    started = time.perf_counter()
    results = []
    with scratch_database(server) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            info = machine(conn)
        for name, value in info.items():
            print(f"{name}: {value}")
        for clients in args.sizes:
            print(f"\n== {clients:,} clients, {args.organizations:,} organizations ==", flush=True)
            results.append(run_size(url, clients, args))
    total = elapsed_since(started)
    # A busy machine (another benchmark, a test run) shows here: the figures are then suspect.
    info["load average at end"] = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\ntotal runtime {total / 60:.1f} min", flush=True)
    write_report(args.report, report_text(command, info, args.sizes, results, total))
    print(f"report written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
