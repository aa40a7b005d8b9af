"""What the audit before commit reads (docs/architecture.md, "The audit before commit"):
every row the refresh wrote, and of the rows it left as they were a sample that rotates
with the hours, so that every row is audited at least once a day. A bug in the skip
logic of `recent` (a changed customer wrongly left as it was) is caught when the
customer's sample bucket comes up, and the audit recomputes from the source tables on its
own, so it is no accomplice of the refresh's SQL."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import psycopg
import pytest

from customer_analytics_pipeline.warehouse import refresh as refresh_module
from customer_analytics_pipeline.warehouse.checks import evaluation
from customer_analytics_pipeline.warehouse.checks.outcomes import SAMPLE_BUCKETS, hour_number, sample_window
from customer_analytics_pipeline.warehouse.refresh import SKIP_UNCHANGED_SQL, OrganizationsFailed
from customer_analytics_pipeline_tests.helpers import (
    anchor,
    largest_organization,
    organization_ids,
    refresh,
    table_versions,
)

MIDNIGHT = datetime(2026, 5, 20, tzinfo=UTC)


def test_the_sample_window_covers_the_hours_since_the_previous_refresh():
    assert sample_window(None, MIDNIGHT) == (0, SAMPLE_BUCKETS)  # first refresh: every row
    assert sample_window(MIDNIGHT, MIDNIGHT + timedelta(minutes=59)) == (1, 0)  # same hour: none
    assert sample_window(MIDNIGHT, MIDNIGHT + timedelta(hours=1)) == (1, 1)
    assert sample_window(MIDNIGHT + timedelta(hours=22), MIDNIGHT + timedelta(hours=25)) == (23, 3)
    assert sample_window(MIDNIGHT, MIDNIGHT + timedelta(hours=23)) == (1, 23)
    assert sample_window(MIDNIGHT, MIDNIGHT + timedelta(hours=24)) == (0, SAMPLE_BUCKETS)  # a day: every row
    assert sample_window(MIDNIGHT, MIDNIGHT - timedelta(hours=1)) == (0, SAMPLE_BUCKETS)  # as_of went back


@pytest.mark.parametrize("hours", [[1] * 48, [3, 5, 1, 7, 2, 6, 4, 20, 1, 1], [23, 2, 23, 24, 30]])
def test_refreshes_one_after_another_audit_every_bucket_once_a_day(hours):
    """Whatever the gaps between refreshes, each bucket's hour of every day falls in
    exactly one refresh's window (and a gap of a day or more audits every bucket)."""
    audited_at: dict[int, list[datetime]] = {bucket: [] for bucket in range(SAMPLE_BUCKETS)}
    previous = MIDNIGHT
    for gap in hours:
        as_of = previous + timedelta(hours=gap)
        first, count = sample_window(previous, as_of)
        for bucket in range(SAMPLE_BUCKETS):
            if (bucket - first) % SAMPLE_BUCKETS < count:
                audited_at[bucket].append(as_of)
        previous = as_of
    for bucket, instants in audited_at.items():
        # A bucket's hour starts at some hour in every 24: the gap between two audits of
        # it is at most a day plus the gap between two refreshes.
        gaps = [later - earlier for earlier, later in zip([MIDNIGHT, *instants], instants, strict=False)]
        assert instants and all(gap <= timedelta(hours=24 + max(hours)) for gap in gaps), bucket


def sample_bucket(conn, customer: str) -> int:
    """The customer's sample bucket, as create_audited_rows.sql computes it."""
    return conn.execute("SELECT mod(abs(hashtext(%s)::bigint), %s)", (customer, SAMPLE_BUCKETS)).fetchone()[0]


def test_a_skip_logic_bug_is_caught_when_the_customers_bucket_comes_up(refreshed):
    """recent skips a customer whose payments changed (a bug of the skip logic, here: it
    skips everyone). Its row is not rewritten, so only the sample audits it: not in a
    refresh whose window misses its bucket, which publishes the stale row, but in the
    first refresh whose window holds it, which keeps the organization's previous rows and
    fails naming the customer."""
    org = largest_organization(refreshed)
    (customer,) = refreshed.execute(
        "SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s AND total_payments > 0"
        " AND customer_segment = 'LOST' ORDER BY 1 LIMIT 1", (org,)).fetchone()  # LOST stays LOST as time passes
    refreshed.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at, updated_at)"
        " VALUES (%s, 'late-payment', %s, 'COMPLETED', 123456, '2020-01-01', '2020-01-01')", (org, customer))
    load_sql = refresh_module.load_sql

    def skip_everyone(path):
        return "DELETE FROM refresh_targets" if path == SKIP_UNCHANGED_SQL else load_sql(path)

    # The fixture refreshed at anchor(): a window starting there ends on the bucket's hour.
    hours_to_bucket = (sample_bucket(refreshed, customer) - hour_number(anchor()) - 1) % SAMPLE_BUCKETS + 1
    with mock.patch.object(refresh_module, "load_sql", skip_everyone):
        missed = refresh(refreshed, "recent", anchor(), [org])  # same hour: no bucket sampled
        assert missed.audit.passed and missed.rows_recomputed == 0
        before = table_versions(refreshed, org)
        with pytest.raises(OrganizationsFailed, match=f"avg_ticket_consistent: 1 row.s., customers {customer}"):
            refresh(refreshed, "recent", anchor() + timedelta(hours=hours_to_bucket), [org])
    assert table_versions(refreshed, org) == before


def test_an_evaluation_reads_one_snapshot_while_a_refresh_commits(refreshed, database_url):
    """``customer-analytics check`` copies the rows it audits, then runs the checks. A
    refresh committing in between (here, of a customer whose payment just arrived) must
    not make the copied row disagree with the sources the checks then read: the whole
    evaluation reads one snapshot, so it fails on nothing."""
    org = largest_organization(refreshed)
    (customer,) = refreshed.execute(
        "SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s AND total_payments > 0"
        " ORDER BY 1 LIMIT 1", (org,)).fetchone()
    refreshed.execute(
        "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at, updated_at)"
        " VALUES (%s, 'arrived-meanwhile', %s, 'COMPLETED', 987654, now(), now())", (org, customer))
    copy_audited_rows = evaluation.copy_audited_rows

    def copy_then_let_a_refresh_commit(conn, *args):
        copy_audited_rows(conn, *args)
        if conn is refreshed:  # the evaluation's copy, not the audit inside that refresh
            with psycopg.connect(database_url, autocommit=True) as other:
                assert refresh(other, "recent", anchor(), [org]).rows_recomputed >= 1

    with mock.patch.object(evaluation, "copy_audited_rows", copy_then_let_a_refresh_commit):
        failed = [o.check_name for o in evaluation.evaluate_checks(refreshed, [org]) if not o.passed]
    assert failed == []
    after = {o.check_name: o for o in evaluation.evaluate_checks(refreshed, [org])}
    assert after["avg_ticket_consistent"].passed  # and after it, on the refreshed row


def test_without_the_table_every_check_of_its_rows_fails_saying_why(refreshed):
    """The rows audited are copied once; when that copy cannot run, no check of them
    passes by reading nothing: each fails with the database's reason."""
    refreshed.execute("ALTER TABLE customer_analytics RENAME TO customer_analytics_elsewhere")
    outcomes = evaluation.audit_outcomes(refreshed, organization_ids(refreshed))
    assert sorted(o.check_name for o in outcomes) == sorted(evaluation.AUDIT_CHECKS)
    assert not any(o.passed for o in outcomes)
    assert all('relation "customer_analytics" does not exist' in o.failures.error for o in outcomes[1:])
