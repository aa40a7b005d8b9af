"""Each asset check fails on the corruption it guards against (and only that one), passes on
clean data, fails the run on ERROR and only warns on a segment shift. Checks 1-7 audit
the refresh's rows inside its transaction, before it commits: a corruption of
customer_analytics is written by the refresh itself (check_runs.written_by_the_refresh),
so the audit sees what a faulty refresh would publish, and the organization keeps its
previous rows."""

import logging
from datetime import timedelta

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    materialize,
)

from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse.checks.evaluation import evaluate_checks, segment_shifts
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME
from customer_analytics_pipeline.warehouse.views import VIEW_NAME
from customer_analytics_pipeline_tests.check_runs import (
    ALL_CHECKS,
    ASSETS_AND_CHECKS,
    VIEW_CHECK,
    audit_failure,
    checks_run,
    committed_by_the_refresh,
    evaluations_by_name,
    failed,
    one_customer,
    run_checks_only,
    step_failures,
)
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids


def test_all_eight_checks_pass_on_clean_generated_data(refreshed, database_url):
    evaluations = run_checks_only(database_url)
    assert set(evaluations) == ALL_CHECKS
    assert failed(evaluations) == set()
    assert evaluations["sample_record_valid"].metadata["sample_row"].value["square_customer_id"]


CORRUPTIONS = {
    "missing column": ("ALTER TABLE customer_analytics DROP COLUMN booking_notes", None, "table_exists"),
    "missing row": ("DELETE FROM customer_analytics"
                    " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s",
                    "TRUE", "row_count_matches_clients"),
    "negative count": (("UPDATE customer_analytics SET total_no_shows = -1"
                        " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
                       "TRUE", "sample_record_valid"),
    "unknown segment": (("UPDATE customer_analytics SET customer_segment = 'VIP'"
                         " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
                        "TRUE", "segment_distribution"),
    "wrong average": (("UPDATE customer_analytics SET avg_ticket_cents = avg_ticket_cents + 1"
                       " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
                      "total_payments > 0", "avg_ticket_consistent"),
    "wrong first booking": (("UPDATE customer_analytics SET first_booking_id = first_booking_id || '-x'"
                             " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
                            "first_booking_id IS NOT NULL", "first_booking_at_matches_source"),
    "wrong referral flag": (("UPDATE customer_analytics SET is_referrer = NOT is_referrer"
                             " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s"),
                            "TRUE", "referral_data_valid"),
    "dropped view": (f"DROP VIEW {VIEW_NAME}", None, "appointments_view_available"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_each_corruption_fails_exactly_its_check(refreshed, database_url, corruption):
    statement, where, check_name = CORRUPTIONS[corruption]
    params = {}
    if where is not None:
        org, customer = one_customer(refreshed, where)
        params = {"org": org, "customer": customer}
    result = checks_run(database_url, corruption=[statement], params=params)

    evaluations = evaluations_by_name(result)
    assert set(evaluations) == ALL_CHECKS
    assert failed(evaluations) == {check_name}
    # A failed ERROR check of 1-7 rolls the organization back and fails the refresh step,
    # naming the organization, the check, its failing rows and customers (every
    # organization when the check could not evaluate); check 8, evaluated after the
    # commit, is not blocking: the step reports the failed evaluation and succeeds.
    failures = step_failures(result)
    if check_name == VIEW_CHECK:
        assert failures == {}
    elif where is None:
        assert failures["customer_analytics"].startswith(audit_failure(len(organization_ids(refreshed)), 0))
        assert f"{check_name} could not evaluate" in failures["customer_analytics"]
    else:
        assert failures["customer_analytics"].startswith(audit_failure(1, len(organization_ids(refreshed)) - 1))
        assert f"organization {params['org']} (" in failures["customer_analytics"]
        assert f"{check_name}: 1 row(s), customers {params['customer']}" in failures["customer_analytics"] or (
            check_name == "row_count_matches_clients")
    metadata = evaluations[check_name].metadata
    if where is not None:
        assert metadata["failing_rows"].value == 1
        (record,) = metadata["failing_organizations_by_name"].value.records
        (name,) = refreshed.execute("SELECT name FROM organizations WHERE id = %s", (params["org"],)).fetchone()
        assert (record.data["organization_id"], record.data["organization"], record.data["failing_rows"]) == (
            params["org"], name, 1)
        assert record.data["example"] == metadata["failing_samples"].value[0]["problem"]
        sample = metadata["failing_samples"].value[0]
        assert sample["square_customer_id"] == params["customer"] or check_name == "row_count_matches_clients"
        assert sample["problem"]
    else:
        assert metadata["error"].value


def test_extra_row_without_a_client_fails_row_count(refreshed, database_url):
    org, _ = one_customer(refreshed)
    evaluations = run_checks_only(database_url, corruption=[
        "SET LOCAL session_replication_role = replica",  # bypass the foreign key
        "INSERT INTO customer_analytics (organization_id, square_customer_id, email_address, phone_number,"
        " customer_segment) VALUES (%(org)s, 'ghost', 'ghost.person@example.com', '+1 555 010 7788', 'LOST')",
    ], params={"org": org})
    assert failed(evaluations) == {"row_count_matches_clients"}
    sample = evaluations["row_count_matches_clients"].metadata["failing_samples"].value[0]
    assert sample["square_customer_id"] == "ghost"
    # Contacts never reach metadata in clear.
    assert sample["email_address"] == "g***@***.com" and sample["phone_number"] == "***88"


def run_scheduled_style(database_url, config):
    """customer_analytics for every organization, its checks and the view, in one range run."""
    instance = DagsterInstance.ephemeral()
    import psycopg

    with psycopg.connect(database_url) as conn:
        keys = organization_ids(conn)
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    result = materialize(
        ASSETS_AND_CHECKS,
        instance=instance,
        resources={"database": PostgresResource(database_url=database_url)},
        run_config={"ops": {"customer_analytics": {"config": config}}},
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=False,
    )
    logs = [(entry.level, entry.user_message) for entry in instance.all_logs(result.run_id)]
    return result, logs


def test_error_failure_fails_the_run_without_retry(refreshed, database_url):
    as_of = anchor(refreshed)
    org, customer = one_customer(refreshed, "first_booking_id IS NOT NULL")
    # A wrong row whose source did not change: recent leaves it as it is, the check sees it.
    refreshed.execute("UPDATE customer_analytics SET first_booking_id = first_booking_id || '-x'"
                      " WHERE organization_id = %s AND square_customer_id = %s", (org, customer))
    # A source change stamped years back: recent recomputes it whatever the stamp (no
    # look-back window), so it is no failure.
    other, cancelled = refreshed.execute(
        "SELECT square_customer_id, first_booking_id FROM customer_analytics WHERE organization_id = %s"
        " AND first_booking_id IS NOT NULL AND square_customer_id <> %s ORDER BY 1 LIMIT 1", (org, customer)).fetchone()
    refreshed.execute("UPDATE bookings SET status = 'CANCELLED_BY_SELLER', updated_at = %s"
                      " WHERE organization_id = %s AND id = %s", (as_of - timedelta(days=3650), org, cancelled))
    later = (as_of + timedelta(days=1000)).isoformat()
    result, logs = run_scheduled_style(database_url, {"mode": "recent", "as_of": later})

    assert not result.success
    headline = step_failures(result)["customer_analytics"]
    assert headline.startswith(audit_failure(1, len(organization_ids(refreshed)) - 1))
    assert f"first_booking_at_matches_source: 1 row(s), customers {customer}" in headline
    # No retry: the same rows would fail the same audit.
    assert not any(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["first_booking_at_matches_source"].passed
    assert evaluations["first_booking_at_matches_source"].metadata["failing_rows"].value == 1
    assert evaluations["first_booking_at_matches_source"].metadata["failing_samples"].value[0][
        "square_customer_id"] == customer
    # The organization kept its previous rows, the other customer's included; the others committed.
    assert refreshed.execute("SELECT first_booking_id FROM customer_analytics WHERE organization_id = %s"
                             " AND square_customer_id = %s", (org, other)).fetchone()[0] == cancelled
    materialized = {(event.asset_key.path[-1], event.partition) for event in result.get_asset_materialization_events()}
    others = [key for key in organization_ids(refreshed) if key != org]
    assert materialized == {(table, key) for table in ("customer_analytics", "customer_segment_changes")
                            for key in others}
    (name,) = refreshed.execute("SELECT name FROM organizations WHERE id = %s", (org,)).fetchone()
    assert any(level == logging.ERROR and "first_booking_at_matches_source" in message
               and f"{org} ({name})" in message and "1 row" in message for level, message in logs)
    # application_logs tells the same story: the refresh failed for that organization on
    # its audit (the others committed), and which check failed.
    history = run_history(refreshed, result.run_id)
    assert [(level, payload["status"]) for level, payload in history] == [("error", "failure"),
                                                                          ("error", "checks_failed")]
    failure = history[0][1]
    assert failure["organizations_committed"] == others
    expected = {"check": "first_booking_at_matches_source", "severity": "ERROR", "organizations": [org],
                "failing_rows": 1}
    assert failure["failed_checks"] == [expected]
    assert history[1][1]["failed_checks"] == [expected]


def test_segment_shift_only_warns_and_the_run_succeeds(refreshed, database_url):
    as_of = anchor(refreshed)
    first, _ = run_scheduled_style(database_url, {"mode": "full", "as_of": as_of.isoformat()})
    assert first.success
    later = (as_of + timedelta(days=400)).isoformat()  # time alone moves most customers to LOST
    result, logs = run_scheduled_style(database_url, {"mode": "recent", "as_of": later})

    assert result.success
    evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()}["segment_distribution"]
    assert not evaluation.passed and evaluation.severity.value == "WARN"
    assert evaluation.metadata["failing_organizations"].value > 0
    assert any(level == logging.WARNING and "segment_distribution" in message and "failed for organization" in message
               for level, message in logs)
    ((level, payload),) = [row for row in run_history(refreshed, result.run_id) if row[1]["status"] == "checks_failed"]
    assert level == "warning"
    assert [(c["check"], c["severity"]) for c in payload["failed_checks"]] == [("segment_distribution", "WARN")]


def test_segment_shift_threshold_is_exact():
    """20 points is not a sharp shift; 20.004 points is (no rounding before comparing)."""
    before = {"org": {"NEW": 0, "LOST": 25_000}}
    assert segment_shifts({"org": {"NEW": 5_000, "LOST": 20_000}}, before) == {}
    shifted = segment_shifts({"org": {"NEW": 5_001, "LOST": 19_999}}, before)
    assert set(shifted) == {"org"} and shifted["org"]["NEW"] == 0.2
    assert segment_shifts({"org": {"NEW": 1}}, {}) == {}  # a first evaluation has nothing to compare


def run_history(conn, run_id) -> list[tuple[str, dict]]:
    """(level, payload) of the run's application_logs rows, in order."""
    return conn.execute(
        "SELECT level, payload FROM application_logs WHERE payload->>'cron_name' = %s"
        " AND payload->>'dagster_run_id' = %s ORDER BY id", (CRON_NAME, run_id)).fetchall()


# The customer's first booking moved before any booking, its bookings synced after the
# refresh: first_booking_at_matches_source leaves it to the next refresh, but the view
# has no day for that first booking, so its new_customers fall one short.
def test_a_failing_check_leaves_one_application_logs_row(refreshed, database_url):
    org, customer = one_customer(refreshed, "first_booking_id IS NOT NULL")
    # Committed before the run: recent leaves the unchanged customer's wrong row.
    refreshed.execute(CORRUPTIONS["negative count"][0], {"org": org, "customer": customer})

    result = checks_run(database_url)

    assert set(evaluations_by_name(result)) == ALL_CHECKS
    assert failed(evaluations_by_name(result)) == {"sample_record_valid"}
    failures = [row for row in run_history(refreshed, result.run_id) if row[1]["status"] == "checks_failed"]
    ((level, payload),) = failures
    assert level == "error"
    assert payload["failed_checks"] == [
        {"check": "sample_record_valid", "severity": "ERROR", "organizations": [org], "failing_rows": 1}]
    # The same outcomes without Dagster (what `customer-analytics check` reports).
    outcomes = {o.check_name: o for o in evaluate_checks(refreshed)}
    assert set(outcomes) == ALL_CHECKS
    assert {name for name, o in outcomes.items() if not o.passed} == {"sample_record_valid"}
    assert outcomes["sample_record_valid"].asset == "customer_analytics"
    assert dict(outcomes["sample_record_valid"].failures.rows_by_organization) == {org: 1}


def test_a_view_that_cannot_answer_fails_check_8_for_every_organization_refreshed(refreshed, database_url):
    """Dropped inside the refresh's transaction, after the refresh made sure it exists."""
    result = checks_run(database_url, corruption=[f"DROP VIEW {VIEW_NAME}"])

    evaluations = evaluations_by_name(result)
    assert failed(evaluations) == {VIEW_CHECK} and evaluations[VIEW_CHECK].metadata["error"].value
    assert step_failures(result) == {}  # check 8 is not blocking
    ((level, payload),) = [row for row in run_history(refreshed, result.run_id) if row[1]["status"] == "checks_failed"]
    assert payload["failed_checks"][0]["check"] == VIEW_CHECK
    assert sorted(payload["failed_checks"][0]["organizations"]) == sorted(organization_ids(refreshed))


def test_evaluating_without_dagster_keeps_the_segment_baseline(refreshed):
    """The command-line evaluation compares segment shares with the pipeline's last
    evaluation and leaves that baseline in place; the Dagster check saves its own."""
    def snapshots():
        return refreshed.execute("SELECT organization_id, segment_counts, evaluated_at"
                                 " FROM customer_analytics_segment_snapshots ORDER BY 1").fetchall()

    evaluate_checks(refreshed)
    assert snapshots() == []
    evaluate_checks(refreshed, remember_segments=True)
    saved = snapshots()
    assert len(saved) == len(organization_ids(refreshed))
    refreshed.execute("UPDATE customer_analytics SET customer_segment = 'NEW'")  # every share moves
    (segments,) = [o for o in evaluate_checks(refreshed) if o.check_name == "segment_distribution"]
    assert segments.severity == "WARN" and not segments.passed
    assert snapshots() == saved


def test_a_run_history_the_database_refuses_is_a_warning_not_a_crash(refreshed, database_url):
    instance = DagsterInstance.ephemeral()
    # The refresh passes its audit and writes its own run-history row, then
    # application_logs goes away, and so does the view (check 8 then fails after commit).
    with committed_by_the_refresh(["ALTER TABLE application_logs RENAME TO application_logs_elsewhere",
                                   f"DROP VIEW {VIEW_NAME}"]):
        result = checks_run(database_url, instance)

    evaluations = evaluations_by_name(result)
    assert set(evaluations) == ALL_CHECKS and failed(evaluations) == {VIEW_CHECK}
    assert step_failures(result) == {}
    assert any(entry.level == logging.WARNING and "could not record the failed checks" in entry.user_message
               for entry in instance.all_logs(result.run_id))
