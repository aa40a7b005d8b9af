"""organization_partitions_sensor keeps the partitions equal to the organizations table;
refresh_failure_sensor records failed refresh runs in application_logs. Both run by
default once a daemon serves the code location; an operator can still stop them in the UI.
On a database without the tables yet (``dg dev`` before ``demo``), a sensor skips with
one line saying what to run, not a traceback every minute."""

import psycopg
from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from customer_analytics_pipeline.defs.jobs import refresh_customer_analytics_job
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    organization_keys,
    organizations_of_run,
    partition_changes,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse.errors import describe
from customer_analytics_pipeline.warehouse.run_history import record_failure


@sensor(
    minimum_interval_seconds=60,
    description="Adds and deletes organization partitions as organizations come and go.",
    default_status=DefaultSensorStatus.RUNNING,
)
def organization_partitions_sensor(context: SensorEvaluationContext, database: PostgresResource):
    try:
        with database.connect() as conn:
            organizations = organization_keys(conn)
    except psycopg.errors.UndefinedTable as error:
        return SkipReason(describe(error))
    changes = partition_changes(context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME), organizations)
    if changes.empty:
        return SkipReason(f"organization partitions already match {len(organizations)} organization(s)")
    requests = []
    if changes.to_add:
        requests.append(AddDynamicPartitionsRequest(ORGANIZATIONS_PARTITION_NAME, changes.to_add))
    if changes.to_delete:
        requests.append(DeleteDynamicPartitionsRequest(ORGANIZATIONS_PARTITION_NAME, changes.to_delete))
    context.log.info(f"organization partitions: {len(changes.to_add)} to add, {len(changes.to_delete)} to delete")
    return SensorResult(dynamic_partitions_requests=requests)


@run_failure_sensor(
    monitored_jobs=[refresh_customer_analytics_job],
    description="Records failed refresh runs that wrote no application_logs row themselves (crashes, lost databases).",
    default_status=DefaultSensorStatus.RUNNING,
)
def refresh_failure_sensor(context: RunFailureSensorContext, database: PostgresResource):
    run = context.dagster_run
    try:
        organizations = organizations_of_run(context.instance, run.tags, run.run_config) or []
        why = "it names no organization partition"
    except ValueError as error:  # a range naming partitions that do not exist (or no longer do)
        organizations, why = [], str(error)
    if not organizations:
        # A row about zero organizations would tell the admin page nothing true.
        context.log.warning(f"run {run.run_id} resolves to no organization ({why}): no application_logs row")
        return
    with database.connect() as conn:
        record_failure(
            conn, run.run_id, context.failure_event.message or "run failed",
            run.tags.get("customer_analytics/mode"), organizations,
        )
