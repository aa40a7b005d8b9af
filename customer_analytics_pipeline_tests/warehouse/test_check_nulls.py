"""Every ERROR check fails on a NULL where a value belongs and on a value where NULL
belongs, not only on values shifted by one: a comparison with ``<>`` instead of
``IS DISTINCT FROM`` (NULL compares as unknown, and unknown is not a failure) or an
invariant that a NULL side leaves unknown must fail a test here.

Each wrong write is made the way a faulty refresh would make it, inside a transaction
(stamped with its now()), and audited there as the refresh audits its writes (here with
no sample of the other rows), then rolled back.
table_exists and row_count_matches_clients compare no nullable value: their cases are
the structural ones (no key where one belongs, a key column too many; no row where a
client is, a row where none is)."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_analytics_pipeline.dev.demo.synthetic_data import generate
from customer_analytics_pipeline.warehouse.checks.audit import audit_organizations
from customer_analytics_pipeline.warehouse.checks.outcomes import AuditScope
from customer_analytics_pipeline.warehouse.migrations import (
    apply_migrations,
    apply_source_indexes,
    create_source_tables,
)
from customer_analytics_pipeline.warehouse.views import ensure_view
from customer_analytics_pipeline_tests.conftest import create_scratch_database
from customer_analytics_pipeline_tests.helpers import GENERATED, anchor, largest_organization, organization_ids, refresh

ROW = "WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"
# (check, case): (statements, which customer of the largest organization, the customer
# the failure names when it is not that one). No customer: the table's shape.
MUTATIONS = {
    ("table_exists", "no primary key"): (
        ["ALTER TABLE customer_analytics DROP CONSTRAINT customer_analytics_pkey"], None, None),
    ("table_exists", "a key column too many"): (
        ["ALTER TABLE customer_analytics DROP CONSTRAINT customer_analytics_pkey",
         "ALTER TABLE customer_analytics ADD PRIMARY KEY (organization_id, square_customer_id, created_at)"],
        None, None),
    ("row_count_matches_clients", "no row where a client is"): (
        [f"DELETE FROM customer_analytics {ROW}"], "TRUE", None),
    ("row_count_matches_clients", "a row where no client is"): (
        ["SET LOCAL session_replication_role = replica",  # past the foreign key
         "INSERT INTO customer_analytics (organization_id, square_customer_id, customer_segment)"
         " VALUES (%(org)s, 'ghost', 'LOST')"], "TRUE", "ghost"),
    ("sample_record_valid", "last_booking_at NULL, bookings accepted"): (
        [f"UPDATE customer_analytics SET last_booking_at = NULL, updated_at = now() {ROW}"],
        "first_booking_at IS NOT NULL", None),
    ("sample_record_valid", "last_booking_at set, no booking accepted"): (
        [f"UPDATE customer_analytics SET last_booking_at = '2026-01-01', updated_at = now() {ROW}"],
        "first_booking_at IS NULL", None),
    ("sample_record_valid", "a count NULL"): (
        ["ALTER TABLE customer_analytics ALTER COLUMN total_no_shows DROP NOT NULL",
         f"UPDATE customer_analytics SET total_no_shows = NULL, updated_at = now() {ROW}"], "TRUE", None),
    ("segment_distribution", "segment NULL"): (
        ["ALTER TABLE customer_analytics ALTER COLUMN customer_segment DROP NOT NULL",
         f"UPDATE customer_analytics SET customer_segment = NULL, updated_at = now() {ROW}"], "TRUE", None),
    ("avg_ticket_consistent", "NULL, payments completed"): (
        [f"UPDATE customer_analytics SET avg_ticket_cents = NULL, updated_at = now() {ROW}"],
        "total_payments > 0", None),
    ("avg_ticket_consistent", "a value, no payment completed"): (
        [f"UPDATE customer_analytics SET avg_ticket_cents = 0, updated_at = now() {ROW}"],
        "total_payments = 0", None),
    ("first_booking_at_matches_source", "id NULL, bookings accepted"): (
        [f"UPDATE customer_analytics SET first_booking_id = NULL, updated_at = now() {ROW}"],
        "first_booking_id IS NOT NULL", None),
    ("first_booking_at_matches_source", "location set, no booking accepted"): (
        [f"UPDATE customer_analytics SET first_booking_location_id = 'L-1', updated_at = now() {ROW}"],
        "first_booking_at IS NULL", None),
    ("referral_data_valid", "activated_as_referrer_at NULL, the profile activated"): (
        [f"UPDATE customer_analytics SET activated_as_referrer_at = NULL, updated_at = now() {ROW}"],
        "is_referrer", None),
    ("referral_data_valid", "referral_source set, none in the source"): (
        [f"UPDATE customer_analytics SET referral_source = 'someone', updated_at = now() {ROW}"],
        "referral_source IS NULL", None),
}


@pytest.fixture(scope="module")
def refreshed_once(server_url) -> Iterator[psycopg.Connection]:
    """The generated data refreshed in full, with the view, shared by this module's
    tests: each leaves it as it found it (its writes are rolled back)."""
    name = f"ca_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        create_scratch_database(admin, name)
    try:
        url = make_conninfo(**{**conninfo_to_dict(server_url), "dbname": name})
        with psycopg.connect(url, autocommit=True) as conn:
            create_source_tables(conn)
            apply_source_indexes(conn)
            apply_migrations(conn)
            generate(conn, GENERATED, progress=lambda message: None)
            refresh(conn, "full", anchor())
            ensure_view(conn)
            yield conn
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("check_name, case", list(MUTATIONS), ids=[" - ".join(key) for key in MUTATIONS])
def test_each_error_check_fails_on_null_and_on_a_value_where_null_belongs(refreshed_once, check_name, case):
    conn = refreshed_once
    statements, where, named = MUTATIONS[(check_name, case)]
    org = largest_organization(conn)
    customer = None
    if where is not None:
        row = conn.execute(f"SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s"
                           f" AND {where} ORDER BY 1 LIMIT 1", (org,)).fetchone()
        assert row, f"the generated data has no customer with {where}"
        (customer,) = row
    with conn.transaction(force_rollback=True):
        for statement in statements:
            conn.execute(statement, {"org": org, "customer": customer})
        (now,) = conn.execute("SELECT now()").fetchone()
        keys = organization_ids(conn)
        audit = audit_organizations(conn, keys, AuditScope(now, {key: (0, 0) for key in keys}))

    outcomes = {outcome.check_name: outcome for outcome in audit.outcomes}
    failures = outcomes[check_name].failures
    assert not audit.passed and not outcomes[check_name].passed
    if where is None:
        assert failures.error
        assert audit.rejected_organizations() == organization_ids(conn)
    else:
        assert dict(failures.rows_by_organization) == {org: 1}
        assert [sample["square_customer_id"] for sample in failures.samples] == [named or customer]
        assert audit.rejected_organizations() == [org]
