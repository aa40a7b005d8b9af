"""Write-audit-publish (docs/architecture.md, "The audit before commit"): a refresh that
writes wrong rows does not publish them. A wrong metric is injected into the refresh's
own transaction, for each ERROR check; the run then fails naming the organization, its
name, the check, the failing rows and the customer; that organization keeps its previous
rows, its view rows and its change log; the other organizations of the batch commit.
And no other session ever sees the rejected rows."""

import threading
from datetime import timedelta

import psycopg
import pytest

from customer_analytics_pipeline.warehouse import refresh as refresh_module
from customer_analytics_pipeline.warehouse.refresh import OrganizationsFailed
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME
from customer_analytics_pipeline.warehouse.views import VIEW_NAME
from customer_analytics_pipeline_tests.check_runs import (
    ALL_CHECKS,
    audit_failure,
    checks_run,
    evaluations_by_name,
    failed,
    one_customer,
    step_failures,
)
from customer_analytics_pipeline_tests.helpers import anchor, largest_organization, organization_ids, refresh

# Per ERROR check: a wrong metric the refresh computes (``refresh_rows``, before its
# upsert writes, stamps and logs it) or a wrong write just before the audit
# (``customer_analytics``), for one customer of the largest organization that matches
# ``where``. ``None`` as the customer: the table's shape, which fails every organization.
WRONG_METRICS = {
    "table_exists": ("before audit", "ALTER TABLE customer_analytics DROP COLUMN total_tips_cents", None),
    "row_count_matches_clients": (
        "before audit", "DELETE FROM customer_analytics WHERE organization_id = %(org)s"
        " AND square_customer_id = %(customer)s", "TRUE"),
    "sample_record_valid": (
        "before writing", "UPDATE refresh_rows SET last_booking_at = first_booking_at - interval '1 day'"
        " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s", "first_booking_at IS NOT NULL"),
    "segment_distribution": (
        "before writing", "UPDATE refresh_rows SET customer_segment = 'VIP'"
        " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s", "TRUE"),
    "avg_ticket_consistent": (
        "before writing", "UPDATE refresh_rows SET avg_ticket_cents = avg_ticket_cents + 1"
        " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s", "total_payments > 0"),
    "first_booking_at_matches_source": (
        "before writing", "UPDATE refresh_rows SET first_booking_id = first_booking_id || '-x'"
        " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s", "first_booking_id IS NOT NULL"),
    "referral_data_valid": (
        "before writing", "UPDATE refresh_rows SET is_referrer = NOT is_referrer"
        " WHERE organization_id = %(org)s AND square_customer_id = %(customer)s", "TRUE"),
}
# A full refresh 40 days after the fixture's: segments move, so every organization's
# refresh rewrites rows and logs changes (what "committed" looks like).
LATER = timedelta(days=40)


def published(conn, organization_id) -> dict:
    """What readers of one organization see: its rows, its view rows, its change log and
    its refresh state, as text."""
    def rows(query):
        return conn.execute(query, (organization_id,)).fetchall()

    return {
        "rows": rows("SELECT ca::text FROM customer_analytics AS ca WHERE organization_id = %s ORDER BY ca::text"),
        "view": rows(f"SELECT v::text FROM {VIEW_NAME} AS v WHERE organization_id = %s ORDER BY v::text"),
        "changes": rows("SELECT ch::text FROM customer_segment_changes AS ch WHERE organization_id = %s"
                        " ORDER BY ch::text"),
        "state": rows("SELECT s::text FROM customer_analytics_refresh_state AS s WHERE organization_id = %s"),
    }


@pytest.mark.parametrize("check_name", list(WRONG_METRICS))
def test_a_wrong_metric_is_rolled_back_and_names_its_check(refreshed, database_url, check_name):
    when, statement, where = WRONG_METRICS[check_name]
    keys = organization_ids(refreshed)
    org = largest_organization(refreshed)
    params = {}
    if where is not None:
        org, customer = one_customer(refreshed, where)
        params = {"org": org, "customer": customer}
    (name,) = refreshed.execute("SELECT name FROM organizations WHERE id = %s", (org,)).fetchone()
    before = {key: published(refreshed, key) for key in keys}
    as_of = anchor() + LATER

    result = checks_run(database_url, config={"mode": "full", "as_of": as_of.isoformat()}, params=params,
                        **{"corruption" if when == "before audit" else "before_writing": [statement]})

    # The run failed, naming the organization and its name, the check, its failing rows
    # and the customer's key.
    assert not result.success
    headline = step_failures(result)["customer_analytics"]
    rejected = keys if where is None else [org]
    assert headline.startswith(audit_failure(len(rejected), len(keys) - len(rejected)))
    assert f"organization {org} ({name}): audit failed: " in headline
    if where is None:
        assert f"{check_name} could not evaluate: " in headline
    else:
        assert f"{check_name}: 1 row(s), customers {customer}" in headline
    evaluations = evaluations_by_name(result)
    assert set(evaluations) == ALL_CHECKS and check_name in failed(evaluations)
    # The rejected organization kept what readers saw: rows, view, change log, state.
    for key in rejected:
        assert published(refreshed, key) == before[key], key
    # The others committed: a refresh at the later as_of, with its segment changes.
    committed = [key for key in keys if key not in rejected]
    assert refreshed.execute(
        "SELECT count(*) FROM customer_analytics_refresh_state WHERE as_of = %s AND organization_id = ANY(%s::uuid[])",
        (as_of, committed)).fetchone()[0] == len(committed)
    if committed:
        assert refreshed.execute(
            "SELECT count(*) FROM customer_segment_changes WHERE as_of = %s", (as_of,)).fetchone()[0] > 0
    assert refreshed.execute(
        "SELECT count(*) FROM customer_segment_changes WHERE as_of = %s AND organization_id = ANY(%s::uuid[])",
        (as_of, rejected)).fetchone()[0] == 0
    # application_logs records the failure, the check and its counts.
    ((payload,),) = refreshed.execute(
        "SELECT payload FROM application_logs WHERE payload->>'cron_name' = %s AND payload->>'status' = 'failure'"
        " AND payload->>'dagster_run_id' = %s", (CRON_NAME, result.run_id)).fetchall()
    assert sorted(payload["organizations_committed"]) == sorted(committed)
    (failed_check,) = [c for c in payload["failed_checks"] if c["check"] == check_name]
    assert failed_check["organizations"] == sorted(rejected) and failed_check["severity"] == "ERROR"
    assert failed_check["failing_rows"] == (0 if where is None else 1)


def test_no_other_session_sees_rows_that_fail_their_audit(refreshed, database_url, monkeypatch):
    """Read from another session while the audit runs (its rows written, not committed)
    and after the rollback: always the previous rows, never the rejected ones."""
    org, customer = one_customer(refreshed, "total_payments > 0")
    before = published(refreshed, org)
    audit = refresh_module.audit_organizations
    seen = []

    def read_elsewhere():
        with psycopg.connect(database_url, autocommit=True) as reader:
            seen.append(published(reader, org))

    def corrupt_then_audit(conn, organization_ids, *scope):
        conn.execute("UPDATE customer_analytics SET avg_ticket_cents = avg_ticket_cents + 1, updated_at = now()"
                     " WHERE organization_id = %s AND square_customer_id = %s", (org, customer))
        # The writing session sees its wrong row; another session, in another thread, does not.
        assert published(conn, org) != before
        reader = threading.Thread(target=read_elsewhere)
        reader.start()
        reader.join(30)
        outcome = audit(conn, organization_ids, *scope)
        read_elsewhere()  # the audit has run, the transaction is not over yet
        return outcome

    monkeypatch.setattr(refresh_module, "audit_organizations", corrupt_then_audit, raising=False)
    with pytest.raises(OrganizationsFailed, match="avg_ticket_consistent: 1 row"):
        refresh(refreshed, "full", anchor() + LATER, [org])
    read_elsewhere()  # after the rollback
    assert seen == [before, before, before]
