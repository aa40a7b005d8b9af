"""Running the eight checks through Dagster, for the tests of several layers."""

from dagster import AssetSelection, DagsterInstance, materialize

from customer_analytics_pipeline.defs.appointments_view_asset import analytics_appointments_by_location_daily
from customer_analytics_pipeline.defs.checks import appointments_view_checks, customer_analytics_checks
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline_tests.helpers import customer_analytics, largest_organization

ALL_CHECKS = {
    "table_exists", "row_count_matches_clients", "sample_record_valid", "segment_distribution",
    "avg_ticket_consistent", "first_booking_at_matches_source", "referral_data_valid", "appointments_view_available",
}
ASSETS_AND_CHECKS = [customer_analytics, analytics_appointments_by_location_daily, customer_analytics_checks,
                     appointments_view_checks]


def checks_run(database_url, instance=None):
    """The eight checks on their own (an unpartitioned run: every organization)."""
    return materialize(
        ASSETS_AND_CHECKS,
        selection=AssetSelection.all_asset_checks(),
        instance=instance or DagsterInstance.ephemeral(),
        resources={"database": PostgresResource(database_url=database_url)},
        raise_on_error=False,
    )


def evaluations_by_name(result) -> dict:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def run_checks_only(database_url, instance=None) -> dict:
    return evaluations_by_name(checks_run(database_url, instance))


def failed(evaluations) -> set[str]:
    return {name for name, evaluation in evaluations.items() if not evaluation.passed}


def one_customer(conn, where="TRUE"):
    org = largest_organization(conn)
    customer = conn.execute(
        f"SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s AND {where} ORDER BY 1 LIMIT 1",
        (org,),
    ).fetchone()[0]
    return org, customer


