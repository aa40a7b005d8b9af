"""Running the eight checks through Dagster, for the tests of several layers.

The eight checks are check specs of the refresh step: a run of ``customer_analytics``
audits its rows with the ERROR checks inside its transaction before it commits, and
evaluates the other two after the commit, on the organizations it refreshed."""

from collections.abc import Sequence
from contextlib import contextmanager
from unittest import mock

import psycopg
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from customer_analytics_pipeline.defs.appointments_view_asset import analytics_appointments_by_location_daily
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse import batch_refresh
from customer_analytics_pipeline.warehouse import refresh as refresh_module
from customer_analytics_pipeline.warehouse.schema import CUSTOMER_ANALYTICS_TABLE, SEGMENT_CHANGES_TABLE
from customer_analytics_pipeline_tests.helpers import anchor, customer_analytics, largest_organization, organization_ids

ALL_CHECKS = {
    "table_exists", "row_count_matches_clients", "sample_record_valid", "segment_distribution",
    "avg_ticket_consistent", "first_booking_at_matches_source", "referral_data_valid", "appointments_view_available",
}
# The checks audited before commit: every ERROR check but the view's.
AUDITED_CHECKS = ALL_CHECKS - {"appointments_view_available"}
VIEW_CHECK = "appointments_view_available"
ASSETS_AND_CHECKS = [customer_analytics, analytics_appointments_by_location_daily]
# The refresh step, with its eight checks.
REFRESH_AND_CHECKS = AssetSelection.assets(AssetKey(CUSTOMER_ANALYTICS_TABLE), AssetKey(SEGMENT_CHANGES_TABLE))


@contextmanager
def written_by_the_refresh(statements: Sequence[str] = (), params: dict | None = None,
                           before_writing: Sequence[str] = ()):
    """Inside the block, every refresh transaction runs ``statements`` after it wrote its
    rows, just before its audit: what a faulty refresh would write, and what its audit
    must then see. ``before_writing`` runs earlier, between the computation of the rows
    (the temporary table ``refresh_rows``) and their upsert: a wrong metric the refresh
    itself then writes, stamps and logs as it would a right one. With an organization
    in ``params["org"]``, only the transactions refreshing it run them (a transaction
    of another organization, when the batch falls back to one by one, does not)."""
    audit = refresh_module.audit_organizations
    refresh_in_transaction = refresh_module._refresh_in_transaction
    params = params or {}

    def corrupt(conn, corruption, organization_ids):
        if "org" not in params or params["org"] in organization_ids:
            for statement in corruption:
                conn.execute(statement, params)

    def corrupted_refresh(conn, organization_ids, parameters, log):
        def corrupting_log(message):
            if message.startswith("recomputed"):  # refresh_rows is computed, not yet written
                corrupt(conn, before_writing, organization_ids)
            log(message)

        return refresh_in_transaction(conn, organization_ids, parameters, corrupting_log)

    def corrupt_then_audit(conn, organization_ids, *scope):
        corrupt(conn, statements, organization_ids)
        return audit(conn, organization_ids, *scope)

    with mock.patch.object(refresh_module, "audit_organizations", corrupt_then_audit), \
            mock.patch.object(refresh_module, "_refresh_in_transaction", corrupted_refresh):
        yield


@contextmanager
def committed_by_the_refresh(statements: Sequence[str], params: dict | None = None):
    """Inside the block, the refresh step runs ``statements`` in its own transaction,
    after its audit passed and it wrote its run-history row, just before it commits:
    what gets past the audit (the view, say), for the checks after the commit to see."""
    refresh = batch_refresh.refresh_customer_analytics

    def corrupting_refresh(conn, organization_ids, parameters, log=lambda message: None,
                           before_commit=lambda conn, result: None):
        def corrupt_then_commit(conn, result):
            before_commit(conn, result)
            for statement in statements:
                conn.execute(statement, params or {})

        return refresh(conn, organization_ids, parameters, log=log, before_commit=corrupt_then_commit)

    with mock.patch.object(batch_refresh, "refresh_customer_analytics", corrupting_refresh):
        yield


def checks_run(database_url, instance=None, corruption: Sequence[str] = (), params: dict | None = None,
               config: dict | None = None, before_writing: Sequence[str] = ()):
    """The eight checks on every organization, the way a scheduled range run gets them:
    a refresh of every organization partition (default: `recent` at the generator's
    anchor, which after the `refreshed` fixture recomputes no one and moves no segment,
    so rows corrupted in customer_analytics stay as they are, audited in full: a wrong
    row is seen whether or not the refresh rewrote it) with the checks in its step.
    ``corruption`` and ``before_writing`` run inside the refresh's transaction (see
    ``written_by_the_refresh``)."""
    instance = instance or DagsterInstance.ephemeral()
    with psycopg.connect(database_url) as conn:
        keys = organization_ids(conn)
    known = set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME))
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, [k for k in keys if k not in known])
    with written_by_the_refresh(corruption, params, before_writing):
        return materialize(
            ASSETS_AND_CHECKS,
            selection=REFRESH_AND_CHECKS,
            instance=instance,
            resources={"database": PostgresResource(database_url=database_url)},
            run_config={"ops": {"customer_analytics": {"config": config or {
                "mode": "recent", "as_of": anchor().isoformat(), "audit_every_row": True}}}},
            tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
            raise_on_error=False,
        )


def evaluations_by_name(result) -> dict:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def run_checks_only(database_url, instance=None, corruption: Sequence[str] = (), params: dict | None = None) -> dict:
    return evaluations_by_name(checks_run(database_url, instance, corruption, params))


def failed(evaluations) -> set[str]:
    return {name for name, evaluation in evaluations.items() if not evaluation.passed}


def step_failures(result) -> dict[str, str]:
    """Each failed step's headline: a Failure's description, else the error's class."""
    failures = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.event_specific_data
            failures[event.step_key] = (
                data.user_failure_data.description if data.user_failure_data is not None else data.error.cls_name
            )
    return failures


def audit_failure(rejected: int, committed: int) -> str:
    """The start of the refresh step's headline when organizations failed their audit."""
    return (f"refresh failed for {rejected} organization(s) on a failed audit, "
            f"{committed} other organization(s) committed: ")


def one_customer(conn, where="TRUE"):
    org = largest_organization(conn)
    customer = conn.execute(
        f"SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s AND {where} ORDER BY 1 LIMIT 1",
        (org,),
    ).fetchone()[0]
    return org, customer
