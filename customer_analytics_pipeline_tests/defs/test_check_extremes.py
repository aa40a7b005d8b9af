"""The checks pass or fail on extreme values, never by crashing (docs/contract.md, The eight checks):
timestamps Python cannot hold (infinity, -infinity, BC and far-future years), sums
past bigint, huge notes and segments. Planted directly in the source tables and in
customer_analytics by the refresh step's own transaction, after it wrote its rows and
before its audit (whether the refresh copes is not the checks' concern); checks 1-7 then
audit them in that transaction, check 8 evaluates after the commit."""

import pytest
from dagster import serialize_value

from customer_analytics_pipeline_tests.check_runs import (
    ALL_CHECKS,
    VIEW_CHECK,
    audit_failure,
    checks_run,
    evaluations_by_name,
    failed,
    one_customer,
    step_failures,
)

BIGINT_MAX = 2**63 - 1
HUGE = 3_000_000  # characters

EXTREMES = {
    "timestamps": [
        ("INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
         " customer_note, created_at, updated_at) VALUES"
         " (%(org)s, 'x-inf', %(customer)s, 'L-x', 'ACCEPTED', 'infinity', 'n', '-infinity', '-infinity'),"
         " (%(org)s, 'x-neg', %(customer)s, 'L-x', 'ACCEPTED', '-infinity', 'n', '-infinity', '-infinity'),"
         " (%(org)s, 'x-bc', %(customer)s, 'L-x', 'ACCEPTED', '0044-03-15 BC', NULL, '-infinity', '-infinity'),"
         " (%(org)s, 'x-far', %(customer)s, 'L-x', 'ACCEPTED', '294276-12-31 23:59:59+00', NULL, '-infinity',"
         "  '-infinity')"),
        ("INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at, updated_at)"
         " VALUES (%(org)s, 'x-inf', %(customer)s, 'COMPLETED', 1, 'infinity', '0044-03-15 BC')"),
        ("UPDATE referral_profiles SET activated_at = '-infinity', updated_at = '-infinity'"
         " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
        # Whichever row a check shows carries an infinite timestamp; this one fails
        # (first_booking_at > last_booking_at), so it is the sample row shown.
        "UPDATE customer_analytics SET last_payment_at = '-infinity'",
        ("UPDATE customer_analytics SET first_booking_at = 'infinity', last_booking_at = '0044-03-15 BC',"
         " activated_as_referrer_at = '294276-12-31 23:59:59+00',"
         " booking_notes = '[{\"booking_id\": \"x-inf\", \"start_at\": \"infinity\", \"customer_note\": \"n\","
         " \"seller_note\": null}]' WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
    ],
    "sums past bigint": [
        ("INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, refunded_cents,"
         " created_at, updated_at) VALUES"
         f" (%(org)s, 'x-max-1', %(customer)s, 'COMPLETED', {BIGINT_MAX}, 0, '2020-01-01', '2020-01-01'),"
         f" (%(org)s, 'x-max-2', %(customer)s, 'COMPLETED', {BIGINT_MAX}, 0, '2020-01-01', '2020-01-01'),"
         # amount - refunded itself overflows bigint
         f" (%(org)s, 'x-min', %(customer)s, 'COMPLETED', {-BIGINT_MAX - 1}, 1, '2020-01-01', '2020-01-01')"),
        (f"UPDATE customer_analytics SET total_revenue_cents = {BIGINT_MAX}, avg_ticket_cents = {-BIGINT_MAX - 1},"
         f" total_rewards_cents = {BIGINT_MAX}, total_payments = 2147483647"
         " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
    ],
    "huge values": [
        ("UPDATE bookings SET customer_note = repeat('n', %(huge)s), seller_note = repeat('s', %(huge)s)"
         " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
        # customer_segment is indexed: it stays under the 2,700 bytes of a btree entry.
        ("UPDATE customer_analytics SET total_no_shows = -1, customer_segment = repeat('Z', 2000),"
         " given_name = repeat('g', %(huge)s), referral_source = repeat('r', %(huge)s),"
         " booking_notes = (SELECT jsonb_agg(jsonb_build_object('booking_id', 'b' || i, 'start_at', 'infinity',"
         "   'customer_note', repeat('n', %(huge)s / 4), 'seller_note', NULL)) FROM generate_series(1, 4) AS i)"
         " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
    ],
}


@pytest.mark.parametrize("extreme", list(EXTREMES))
def test_checks_evaluate_on_extreme_values(refreshed, database_url, extreme):
    org, customer = one_customer(refreshed, "total_payments > 0 AND is_referrer")
    result = checks_run(database_url, corruption=EXTREMES[extreme],
                        params={"org": org, "customer": customer, "huge": HUGE})
    evaluations = evaluations_by_name(result)

    # Every check evaluated on the data: none is missing, none reports that it could
    # not evaluate, and the only step failure is the refresh step's, for the one
    # organization whose audit failed, naming each check that failed.
    assert set(evaluations) == ALL_CHECKS
    assert {name for name, e in evaluations.items() if "error" in e.metadata} == set()
    blocking = [name for name in evaluations if name in failed(evaluations) and name != VIEW_CHECK
                and evaluations[name].severity.value == "ERROR"]
    failures = step_failures(result)
    assert set(failures) == ({"customer_analytics"} if blocking else set())
    if blocking:
        headline = failures["customer_analytics"]
        assert headline.startswith(audit_failure(1, 3)) and all(f"{name}: " in headline for name in blocking)
    # What leaves the database stays small whatever the data holds.
    for name, evaluation in evaluations.items():
        assert len(serialize_value(evaluation.metadata)) < 20_000, name
    sample_row = evaluations["sample_record_valid"].metadata["sample_row"].value
    if not evaluations["sample_record_valid"].passed:  # the planted row is the one shown
        assert sample_row["square_customer_id"] == customer
    if extreme == "timestamps":
        shown = (sample_row["first_booking_at"], sample_row["last_booking_at"])
        assert shown == ("infinity", "0044-03-15T00:00:00+00:00 BC")
    if extreme == "huge values":
        assert sample_row["booking_notes_count"] == 4 and len(sample_row["booking_notes"]) == 3
