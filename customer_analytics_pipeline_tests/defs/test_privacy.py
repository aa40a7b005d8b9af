"""No personal value of the source data (names, email, phone, note text, referral source)
reaches Dagster's event storage or application_logs through the checks, whether they
pass or fail (docs/contract.md, The eight checks: check output is masked)."""

from datetime import timedelta

import psycopg
import pytest
from dagster import instance_for_test, serialize_value

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.warehouse.checks.masking import (
    database_error_text,
    mask_personal_fields,
)
from customer_analytics_pipeline_tests.check_runs import (
    ALL_CHECKS,
    failed,
    run_checks_only,
)
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, refresh_job

# The smallest uuid: this organization and its one customer come first, so the sample
# row of a passing evaluation is the planted customer's.
PLANTED_ORGANIZATION = "00000000-0000-4000-8000-000000000000"
PLANTED_CUSTOMER = "0-planted"
PLANTED = {
    "given_name": "Givenzq81",
    "family_name": "Familyzq81",
    "email_address": "mailzq81@domainzq81.example",
    "phone_number": "+1 (555) 013-7742",
    "customer_note": "notezq81: insulin dependent, anxious about needles",
    "seller_note": "sellerzq81 prefers the side door",
    "referral_source": "referralzq81, a friend",
}
# Pieces of the planted values that no other data holds: finding one anywhere means a
# personal value (or part of one) leaked. Masks keep at most an initial, a top-level
# domain and the last two digits of a phone.
TOKENS = ("givenzq81", "familyzq81", "mailzq81", "domainzq81", "013-7742", "0137742",
          "notezq81", "insulin", "sellerzq81", "side door", "referralzq81")


def plant_customer(conn, stamped):
    """One organization with one customer whose every personal field holds a token."""
    p = {**PLANTED, "org": PLANTED_ORGANIZATION, "customer": PLANTED_CUSTOMER, "at": stamped}
    conn.execute("INSERT INTO organizations (id, name) VALUES (%(org)s, 'planted')", p)
    conn.execute(
        "INSERT INTO square_existing_clients VALUES (%(org)s, %(customer)s, %(given_name)s, %(family_name)s,"
        " %(email_address)s, %(phone_number)s, %(at)s, %(at)s)", p)
    conn.execute(
        "INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
        " customer_note, seller_note, created_at, updated_at) VALUES"
        " (%(org)s, 'b1', %(customer)s, 'L1', 'ACCEPTED', %(at)s, %(customer_note)s, NULL, %(at)s, %(at)s),"
        " (%(org)s, 'b2', %(customer)s, 'L1', 'NO_SHOW', %(at)s, NULL, %(seller_note)s, %(at)s, %(at)s)", p)
    conn.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at, updated_at)"
        " VALUES (%(org)s, 'p1', %(customer)s, 'COMPLETED', 4500, %(at)s, %(at)s)", p)
    conn.execute(
        "INSERT INTO referral_profiles (organization_id, square_customer_id, referral_code, activated_at,"
        " referral_source, created_at, updated_at) VALUES (%(org)s, %(customer)s, 'R1', %(at)s,"
        " %(referral_source)s, %(at)s, %(at)s)", p)


# Every corruption hits the planted customer (one check each), plus a row with no
# client that carries the planted contacts: each failing check has a sample to show.
CORRUPTIONS = (
    ("UPDATE customer_analytics SET total_no_shows = -1, avg_ticket_cents = avg_ticket_cents + 1,"
     " first_booking_id = 'elsewhere', customer_segment = 'VIP', referral_source = 'x' || referral_source"
     " WHERE organization_id = %(org)s"),
    "SET LOCAL session_replication_role = replica",  # lets the next row in without its client
    ("INSERT INTO customer_analytics (organization_id, square_customer_id, given_name, family_name, email_address,"
     " phone_number, booking_notes, customer_segment) SELECT organization_id, 'ghost', given_name, family_name,"
     " email_address, phone_number, booking_notes, 'LOST' FROM customer_analytics WHERE organization_id = %(org)s"),
)


def stored_text(instance) -> str:
    """Every event of every run in the instance (and the runs themselves), serialized."""
    return "\n".join(
        serialize_value(item)
        for run in instance.get_runs()
        for item in (run, *instance.all_logs(run.run_id))
    ).lower()


def leaked(text: str) -> list[str]:
    return [token for token in TOKENS if token in text]


@pytest.fixture
def planted(generated):
    plant_customer(generated, anchor(generated) - timedelta(days=10))
    return generated


def test_no_personal_value_reaches_dagster_storage_or_application_logs(planted, database_url):
    with instance_for_test() as instance:
        keys = organization_ids(planted)
        assert keys[0] == PLANTED_ORGANIZATION
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
        job = refresh_job(database_url)
        refreshed = job.execute_in_process(
            instance=instance, tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
            run_config={"ops": {"customer_analytics": {"config": {"as_of": anchor(planted).isoformat()}}}},
        )
        # Passing evaluations: the sample row shown is the planted customer's.
        passing = {e.check_name: e for e in refreshed.get_asset_check_evaluations()}
        assert set(passing) == ALL_CHECKS and failed(passing) == set()
        assert passing["sample_record_valid"].metadata["sample_row"].value["square_customer_id"] == PLANTED_CUSTOMER

        # Committed by the refresh itself: its checks 1-7 then fail on the planted rows.
        failing = run_checks_only(database_url, instance, corruption=CORRUPTIONS, params={"org": PLANTED_ORGANIZATION})
        assert failed(failing) == ALL_CHECKS - {"table_exists", "appointments_view_available"}
        for name in failed(failing):
            samples = failing[name].metadata["failing_samples"].value
            assert any(s["square_customer_id"] in (PLANTED_CUSTOMER, "ghost") for s in samples), name

        assert leaked(stored_text(instance)) == []
        logs = planted.execute("SELECT string_agg(concat_ws(' ', message, payload), ' ') FROM application_logs")
        assert leaked(logs.fetchone()[0].lower()) == []

        # The search does see a personal value when one is logged.
        instance.report_engine_event(f"deliberately logged: {PLANTED['email_address']}", refreshed.dagster_run)
        assert leaked(stored_text(instance)) == ["mailzq81", "domainzq81"]


def test_masks_keep_shape_never_content():
    masked = mask_personal_fields({
        "square_customer_id": "C1", "given_name": "Jane", "family_name": "", "phone_number": "+1 555 010 7788",
        "email_address": "jane.doe@smith-family.com", "referral_source": None,
        "booking_notes": [{"booking_id": "b1", "start_at": "infinity", "customer_note": "diabetic",
                           "seller_note": None, "extra": "diabetic"}, "not an object"],
    })
    assert masked == {
        "square_customer_id": "C1", "given_name": "J***", "family_name": "***", "phone_number": "***88",
        "email_address": "j***@***.com", "referral_source": None,
        "booking_notes": [{"booking_id": "b1", "start_at": "infinity", "customer_note": "***(8 characters)",
                           "seller_note": None}, "***"],
    }
    assert mask_personal_fields({"email_address": "no-at-sign", "booking_notes": {"a": "b"}}) == {
        "email_address": "***", "booking_notes": "***"}


def test_database_errors_are_described_without_the_values_they_quote(conn):
    conn.execute("CREATE TEMP TABLE t (email text PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES ('mailzq81@domainzq81.example')")
    for statement in ("INSERT INTO t VALUES ('mailzq81@domainzq81.example')",  # DETAIL: Key (email)=(...)
                      "SELECT email::int FROM t"):  # invalid input syntax for type integer: "..."
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(statement)
        assert "mailzq81" in str(raised.value)
        assert "mailzq81" not in database_error_text(raised.value)
    assert database_error_text(raised.value) == "InvalidTextRepresentation (22P02)"
