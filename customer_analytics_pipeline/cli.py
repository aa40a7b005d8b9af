"""Command line: ``customer-analytics migrate | refresh | check | demo | ui``.

For operators, on the application's database: ``migrate`` (the pipeline's schema and
view), ``refresh`` (the asset's refresh, outside Dagster) and ``check`` (the eight checks
as a table). For newcomers, on a database of their own: ``demo`` goes from nothing to a
refreshed table (database, schema, demo data, partitions, the refresh job per batch) and
``ui`` brings up the Dagster UI and daemon on it; both refuse a database holding data
they did not create.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone

from dagster import BetaWarning, PreviewWarning

# The command prints its own progress. Dagster's notices that single-run backfills and
# freshness policies are beta/preview APIs (a choice documented in README), and
# platformdirs' note about XDG_RUNTIME_DIR, would only be noise here.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

import psycopg
from dagster import DagsterInstance

from customer_analytics_pipeline.checks.evaluation import CheckOutcome, evaluate_checks
from customer_analytics_pipeline.checks.outcomes import ERROR
from customer_analytics_pipeline.dagster_instance import get_instance
from customer_analytics_pipeline.database_errors import describe
from customer_analytics_pipeline.definitions import build_definitions, database_resource
from customer_analytics_pipeline.demo.demo_database import (
    NotADemoDatabase,
    create_demo_source_tables,
    demo_organization_count,
    load_demo_data,
    refuse_unless_demo_database,
)
from customer_analytics_pipeline.demo.synthetic_data import GeneratorSettings
from customer_analytics_pipeline.migrations import SchemaNotCurrent, apply_source_indexes, ensure_schema_current, migrate
from customer_analytics_pipeline.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    sync_organization_partitions,
)
from customer_analytics_pipeline.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.partitions import organization_keys
from customer_analytics_pipeline.refresh import (
    OrganizationsFailed,
    RefreshParameters,
    normalize_organization_ids,
    parse_as_of,
    refresh_customer_analytics,
)
from customer_analytics_pipeline.resources import PostgresResource
from customer_analytics_pipeline.run_history import record_failure, record_success
from customer_analytics_pipeline.schedules import batches
from customer_analytics_pipeline.settings import load_settings

# How long `ui` waits for `dagster dev` to stop its processes before killing it.
UI_SHUTDOWN_SECONDS = 30

def say(message: str) -> None:
    print(message, flush=True)


def prepare_schema(database: PostgresResource, *, demo_tables: bool, source_indexes: bool) -> None:
    """The demo's source tables (only where asked: production has the application's),
    the pipeline's migrations and view, then the optional source indexes (only where
    asked: they are the application owners' to apply, and need ownership of its tables)."""
    with database.connect() as conn:
        if demo_tables:
            create_demo_source_tables(conn)
        for migration in migrate(conn):
            say(f"  applied migration {migration.version:04d}_{migration.name}")
        if source_indexes:
            try:
                apply_source_indexes(conn)
            except psycopg.errors.InsufficientPrivilege as error:
                raise SystemExit(
                    f"the optional source indexes need the owner of the application's tables: {describe(error)}"
                ) from error


def refresh_in_batches(instance: DagsterInstance, mode: str, batch_size: int) -> bool:
    """Runs the refresh job (customer_analytics, its checks, the view) over every
    organization partition in partition-range runs of ``batch_size``, as the schedules
    do; True when every run succeeded."""
    # Bound through EnvVar("DATABASE_URL") like the code location: the run storage keeps
    # the variable's name, never its value.
    job = build_definitions(database_resource()).resolve_job_def(REFRESH_JOB_NAME)
    keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
    all_succeeded = True
    for number, batch in enumerate(batches(keys, batch_size), 1):
        began = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            run_config={
                "ops": {"customer_analytics": {"config": {"mode": mode}}},
                # The command prints its own progress; Dagster's event stream stays in the run log.
                "loggers": {"console": {"config": {"log_level": "ERROR"}}},
            },
            tags={PARTITION_RANGE_START_TAG: batch[0], PARTITION_RANGE_END_TAG: batch[-1]},
            raise_on_error=False,
        )
        checks = result.get_asset_check_evaluations()
        failed_checks = sorted({e.check_name for e in checks if not e.passed})
        refreshed = result.asset_materializations_for_node("customer_analytics")
        summary = "refresh failed"
        if refreshed:
            metadata = refreshed[0].metadata
            summary = (
                f"{metadata['dagster/row_count'].value} rows ({metadata['rows_inserted'].value} inserted, "
                f"{metadata['rows_updated'].value} updated)"
            )
        say(
            f"  batch {number}: {len(batch)} organization(s), {summary}, "
            f"checks {len(checks) - len(failed_checks)}/{len(checks)} passed"
            + (f" (failed: {', '.join(failed_checks)})" if failed_checks else "")
            + f" in {time.perf_counter() - began:.1f}s"
        )
        all_succeeded &= result.success
    return all_succeeded


def print_summary(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT customer_segment, count(*), sum(total_revenue_cents) FROM customer_analytics"
        " GROUP BY customer_segment ORDER BY customer_segment"
    ).fetchall()
    (organizations,) = conn.execute("SELECT count(DISTINCT organization_id) FROM customer_analytics").fetchone()
    say(f"customer_analytics: {sum(r[1] for r in rows)} customers in {organizations} organizations")
    for segment, customers, revenue in rows:
        say(f"  {segment:<8} {customers:>9} customers  revenue {revenue / 100:>14,.2f}")


def database_from_environment() -> PostgresResource:
    """DATABASE_URL's database, or the embedded one. Outside a Dagster run nothing
    resolves an EnvVar, so the command reads the variable itself (and never prints it)."""
    settings = load_settings()
    return PostgresResource(
        database_url=os.environ.get("DATABASE_URL") or None,
        statement_timeout_seconds=settings.statement_timeout_seconds,
        lock_timeout_seconds=settings.lock_timeout_seconds,
        idle_in_transaction_timeout_seconds=settings.idle_in_transaction_timeout_seconds,
    )


def start_demo_database(args: argparse.Namespace) -> PostgresResource:
    """DATABASE_URL's database or the embedded one, refused unless it is the demo's own;
    then the schema and, when it has none yet (or on --reload), the demo data."""
    database = database_from_environment()
    say("database: " + ("DATABASE_URL" if not database.uses_embedded_server else f"embedded PostgreSQL in {database.embedded_data_dir}"))
    with database.connect() as conn:
        refuse_unless_demo_database(conn)
    prepare_schema(database, demo_tables=True, source_indexes=True)
    with database.connect() as conn:
        organizations = demo_organization_count(conn)
        if organizations and not args.reload:
            say(f"demo data already loaded ({organizations} organizations); --reload replaces it")
            return database
        say("loading demo data")
        # Anchored at today so the demo's segments look like a live business.
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        settings = GeneratorSettings(
            organizations=args.organizations, clients_per_org=args.clients_per_org, seed=args.seed, now=today
        )
        load_demo_data(conn, settings, replace=args.reload, progress=lambda message: say(f"  {message}"))
    return database


def demo(args: argparse.Namespace) -> int:
    database = start_demo_database(args)
    instance = get_instance(database.url())
    with database.connect() as conn:
        changes = sync_organization_partitions(instance, conn)
        keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
        say(
            f"organization partitions: {len(keys)} ({len(changes.to_add)} added, {len(changes.to_delete)} removed);"
            f" refreshing customer_analytics ({args.mode}), checks and view"
        )
        succeeded = refresh_in_batches(instance, args.mode, args.batch_size)
        print_summary(conn)
    if not succeeded:
        say("some runs failed: see their run logs (`customer-analytics ui`)")
        return 1
    return 0


def ui(args: argparse.Namespace) -> int:
    """Runs `dagster dev` (webserver + daemon) against the demo database until stopped by
    Ctrl-C or SIGTERM, either of which shuts `dagster dev` and its processes down."""
    database = start_demo_database(args)
    instance = get_instance(database.url())
    with database.connect() as conn:
        sync_organization_partitions(instance, conn)
    instance.dispose()
    say(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C stops it)")
    command = [sys.executable, "-m", "dagster", "dev", "-m", "customer_analytics_pipeline.definitions",
               "-h", args.host, "-p", str(args.port)]
    process = subprocess.Popen(command, env=os.environ.copy())

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # `dagster dev` stops its webserver, daemon and code server on SIGINT.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=UI_SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
        return 0


def migrate_command(args: argparse.Namespace) -> None:
    database = database_from_environment()
    prepare_schema(database, demo_tables=False, source_indexes=args.source_indexes)
    say("pipeline schema and view are current" + (", optional source indexes in place" if args.source_indexes else ""))


def refresh_command(args: argparse.Namespace) -> int:
    """The asset's refresh (same function, same run history), outside Dagster: the given
    organizations, or every organization in batches as the schedules run them."""
    try:
        parameters = RefreshParameters(
            mode=args.mode,
            as_of=parse_as_of(args.as_of) if args.as_of else datetime.now(timezone.utc),
            lookback_days=args.lookback_days,
        )
        organization_ids = normalize_organization_ids(args.organization) if args.organization else None
    except ValueError as error:
        say(f"error: {error}")
        return 2
    database = database_from_environment()
    failed = False
    with database.connect() as conn:
        ensure_schema_current(conn)
        keys = organization_ids or organization_keys(conn)
        say(f"refreshing {len(keys)} organization(s), mode={parameters.mode}, as_of={parameters.as_of.isoformat()}")
        for batch in batches(keys, args.batch_size):
            run_id = f"cli:{uuid.uuid4()}"
            try:
                result = refresh_customer_analytics(
                    conn, batch, parameters, before_commit=lambda conn, result: record_success(conn, result, run_id)
                )
            except OrganizationsFailed as error:
                committed = [o.organization_id for o in error.refreshed.organizations] if error.refreshed else []
                record_failure(conn, run_id, str(error), parameters.mode, batch, committed)
                say(f"  {len(committed)} organization(s) refreshed; failed: " + "; ".join(map(str, error.failures)))
                failed = True
                continue
            except psycopg.Error as error:
                record_failure(conn, run_id, describe(error), parameters.mode, batch)
                say(f"  {len(batch)} organization(s) failed, previous rows kept: {describe(error)}")
                failed = True
                continue
            say(
                f"  {len(result.organizations)} organization(s): {result.total('row_count')} rows, "
                f"{result.total('rows_inserted')} inserted, {result.total('rows_updated')} updated, "
                f"{result.total('rows_deleted')} deleted in {result.duration_seconds:.1f}s"
            )
    return 1 if failed else 0


def check_table(outcomes: Sequence[CheckOutcome], organization_ids: Sequence[str]) -> list[str]:
    """The eight checks per organization, one row each: ``ok``, or the severity and the
    number of failing rows (``!`` when the check could not evaluate)."""
    headers = ["organization", *(f"{n}:{o.check_name}" for n, o in enumerate(outcomes, 1))]
    rows = []
    for organization_id in organization_ids:
        cells = [organization_id]
        for outcome in outcomes:
            failing = outcome.failures.rows_by_organization.get(organization_id, 0)
            if outcome.failures.error:
                cells.append(f"{outcome.severity} !")
            elif failing:
                cells.append(f"{outcome.severity} {failing}")
            else:
                cells.append("ok")
        rows.append(cells)
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers, *rows]]


def check_command(args: argparse.Namespace) -> int:
    """The eight checks, evaluated as the Dagster checks evaluate them, printed as a table
    per organization with the reasons below it; exit 1 when an ERROR check fails."""
    try:
        organization_ids = normalize_organization_ids(args.organization) if args.organization else None
    except ValueError as error:
        say(f"error: {error}")
        return 2
    with database_from_environment().connect() as conn:
        organization_ids = organization_ids or organization_keys(conn)
        outcomes = evaluate_checks(conn, organization_ids)
    for line in check_table(outcomes, organization_ids):
        say(line)
    for outcome in outcomes:
        if outcome.failures.error:
            say(f"[{outcome.severity}] {outcome.check_name} could not evaluate: {outcome.failures.error}")
        for sample in outcome.failures.samples:
            say(f"[{outcome.severity}] {outcome.check_name}: organization {sample.get('organization_id')}, "
                f"customer {sample.get('square_customer_id')}: {sample.get('problem')}")
    errors = [o.check_name for o in outcomes if not o.passed and o.severity == ERROR]
    say(f"{len(outcomes) - len(errors)}/{len(outcomes)} checks without an ERROR failure over "
        f"{len(organization_ids)} organization(s)" + (f"; failed: {', '.join(errors)}" if errors else ""))
    return 1 if errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customer-analytics", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="load demo data and materialize customer_analytics for every organization (own database only)"
    )
    ui_parser = commands.add_parser(
        "ui", help="start the Dagster UI and daemon on demo data (own database only)"
    )
    for subparser in (demo_parser, ui_parser):
        subparser.add_argument("--organizations", type=int, default=12)
        subparser.add_argument("--clients-per-org", type=int, default=400)
        subparser.add_argument("--seed", type=int, default=42)
        subparser.add_argument("--reload", action="store_true", help="replace the demo's data (only the demo's)")
    demo_parser.add_argument("--mode", choices=("full", "recent"), default="full")
    demo_parser.add_argument("--batch-size", type=int, default=5, help="organizations per run")
    demo_parser.set_defaults(run=demo)
    ui_parser.add_argument("--host", default="127.0.0.1")
    ui_parser.add_argument("--port", type=int, default=3000)
    ui_parser.set_defaults(run=ui)
    migrate_parser = commands.add_parser(
        "migrate", help="apply the pipeline's migrations to DATABASE_URL (or the embedded server)"
    )
    migrate_parser.add_argument(
        "--source-indexes", action="store_true",
        help="also build the optional indexes on the application's tables (CONCURRENTLY; needs their owner)",
    )
    migrate_parser.set_defaults(run=migrate_command)
    refresh_parser = commands.add_parser(
        "refresh", help="refresh customer_analytics (every organization, or those given) outside Dagster"
    )
    refresh_parser.add_argument("--mode", choices=("full", "recent"), default="full")
    refresh_parser.add_argument("--organization", action="append", metavar="ID", help="an organization id (repeatable)")
    refresh_parser.add_argument("--as-of", help="ISO 8601 instant segments are relative to (default: now; no offset = UTC)")
    refresh_parser.add_argument("--lookback-days", type=int, default=90, help="recent mode's look-back window")
    refresh_parser.add_argument(
        "--batch-size", type=int, default=load_settings().organizations_per_run, help="organizations per transaction"
    )
    refresh_parser.set_defaults(run=refresh_command)
    check_parser = commands.add_parser("check", help="evaluate the eight checks and print them per organization")
    check_parser.add_argument("--organization", action="append", metavar="ID", help="an organization id (repeatable)")
    check_parser.set_defaults(run=check_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "batch_size", 1) < 1:
        say("--batch-size must be at least 1")
        return 2
    try:
        return args.run(args) or 0
    except NotADemoDatabase as refusal:
        say(f"error: {refusal}")
        return 2
    except ValueError as error:  # a malformed setting, DATABASE_URL included (never with its password)
        say(f"error: {error}")
        return 2
    except SchemaNotCurrent as error:
        say(f"error: {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
