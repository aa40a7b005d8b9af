"""On Citus, runs keep their guarantees: through Dagster as the least-privilege runtime
role (the documented grants, which Citus carries to the shards), per-organization locks that
make overlapping refreshes wait, and a plain "run migrate" when the application moved
its tables to Citus after the pipeline's were created."""

import threading
import time

import psycopg
import pytest
from dagster import DagsterEventType

from customer_analytics_pipeline.warehouse.citus import distribute_source_tables
from customer_analytics_pipeline.warehouse.locks import ORGANIZATION_LOCK_NAMESPACE
from customer_analytics_pipeline.warehouse.migrations import create_source_tables, migrate
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME
from customer_analytics_pipeline.warehouse.sql_files import load_sql
from customer_analytics_pipeline_tests.defs.test_least_privilege import run_job_as
from customer_analytics_pipeline_tests.helpers import anchor, organization_ids, refresh

pytestmark = pytest.mark.citus


def test_refresh_checks_and_view_run_through_dagster_as_the_runtime_role(citus_generated, make_citus_role):
    as_runtime_role = make_citus_role()
    result = run_job_as(as_runtime_role, organization_ids(citus_generated), anchor().isoformat())

    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 8 and all(e.passed for e in evaluations)
    (clients,) = citus_generated.execute("SELECT count(*) FROM square_existing_clients").fetchone()
    assert citus_generated.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == clients
    assert citus_generated.execute(
        "SELECT payload->>'status' FROM application_logs WHERE payload->>'cron_name' = %s", (CRON_NAME,)
    ).fetchall() == [("success",)]


def test_tables_left_local_after_the_move_to_citus_say_to_run_migrate(make_citus_database, make_citus_role_for):
    url = make_citus_database()
    with psycopg.connect(url, autocommit=True) as owner:
        create_source_tables(owner)
        migrate(owner)  # the pipeline's tables created while the application's were local
        as_runtime_role = make_citus_role_for(url)
        distribute_source_tables(owner)  # the application moves to Citus
        owner.execute("INSERT INTO organizations (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'A')")
        keys = organization_ids(owner)

        result = run_job_as(as_runtime_role, keys, anchor().isoformat())
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
        description = failure.event_specific_data.user_failure_data.description
        assert "distributing customer_analytics" in description and "run `customer-analytics migrate`" in description

        migrate(owner)  # the owner does; the grants given before reach the new shards
        assert run_job_as(as_runtime_role, keys, anchor().isoformat()).success


def test_overlapping_refreshes_of_an_organization_wait_for_each_other(citus_generated, citus_database_url):
    organization = organization_ids(citus_generated)[0]
    finished = []
    with (psycopg.connect(citus_database_url, autocommit=True) as holder,
          psycopg.connect(citus_database_url, autocommit=True) as waiter):

        def wait_and_refresh():
            try:
                finished.append(refresh(waiter, "full", anchor(), [organization]))
            except Exception as error:  # reported by the assertion below
                finished.append(error)

        waiter.execute("SET lock_timeout = '1s'")
        with holder.transaction():
            holder.execute(load_sql("refresh/lock_organizations.sql"),
                           {"organization_ids": [organization], "lock_namespace": ORGANIZATION_LOCK_NAMESPACE})
            with pytest.raises(psycopg.errors.LockNotAvailable):
                refresh(waiter, "full", anchor(), [organization])
            waiter.execute("SET lock_timeout = '60s'")
            thread = threading.Thread(target=wait_and_refresh)
            thread.start()
            time.sleep(1.5)
            assert not finished  # still waiting for the holder's lock
        thread.join(60)  # the holder committed: the refresh goes ahead
    assert finished and not isinstance(finished[0], Exception), finished
    assert finished[0].total("rows_inserted") > 0
