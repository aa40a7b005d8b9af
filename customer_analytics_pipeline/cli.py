"""Command line: ``customer-analytics demo | ui | migrate``.

``demo`` goes from nothing to a refreshed table: database (DATABASE_URL or embedded),
schema, demo data, organization partitions, and customer_analytics materialized for
every organization in batches, with progress as it goes. ``ui`` brings up the Dagster
UI (and its daemon: schedules and sensors) on the same database.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
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

from customer_analytics_pipeline.dagster_instance import get_instance
from customer_analytics_pipeline.definitions import build_definitions
from customer_analytics_pipeline.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.migrations import apply_migrations, apply_source_indexes, create_source_tables
from customer_analytics_pipeline.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    sync_organization_partitions,
)
from customer_analytics_pipeline.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.resources import PostgresResource
from customer_analytics_pipeline.schedules import batches

def say(message: str) -> None:
    print(message, flush=True)


def prepare_schema(database: PostgresResource, *, demo_tables: bool, source_indexes: bool) -> None:
    """The demo's source tables (only where asked: production has the application's),
    the pipeline's migrations, then the optional source indexes (only where asked:
    they are the application owners' to apply, and need ownership of its tables)."""
    with database.connect() as conn:
        if demo_tables:
            create_source_tables(conn)
        for migration in apply_migrations(conn):
            say(f"  applied migration {migration.version:04d}_{migration.name}")
        if source_indexes:
            try:
                apply_source_indexes(conn)
            except psycopg.errors.InsufficientPrivilege as error:
                raise SystemExit(
                    f"the optional source indexes need the owner of the application's tables: {error}"
                ) from error


def refresh_in_batches(instance: DagsterInstance, database: PostgresResource, mode: str, batch_size: int) -> bool:
    """Runs the refresh job (customer_analytics, its checks, the view) over every
    organization partition in partition-range runs of ``batch_size``, as the schedules
    do; True when every run succeeded."""
    job = build_definitions(database).resolve_job_def(REFRESH_JOB_NAME)
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
    return PostgresResource(database_url=os.environ.get("DATABASE_URL") or None)


def start_database() -> PostgresResource:
    """DATABASE_URL's database, or the embedded one (started now), with the schema ready."""
    database = database_from_environment()
    say("database: " + ("DATABASE_URL" if not database.uses_embedded_server else f"embedded PostgreSQL in {database.embedded_data_dir}"))
    prepare_schema(database, demo_tables=True, source_indexes=True)
    return database


def load_demo_data_if_needed(database: PostgresResource, args: argparse.Namespace) -> None:
    """Seeded demo data when the database has no organizations (or on --reload)."""
    with database.connect() as conn:
        (organizations,) = conn.execute("SELECT count(*) FROM organizations").fetchone()
        if organizations == 0 or args.reload:
            say("loading demo data")
            # Anchored at today so the demo's segments look like a live business.
            today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
            settings = GeneratorSettings(
                organizations=args.organizations, clients_per_org=args.clients_per_org, seed=args.seed, now=today
            )
            with conn.transaction():
                if args.reload:
                    conn.execute("TRUNCATE organizations CASCADE")
            generate(conn, settings, progress=lambda message: say(f"  {message}"))
        else:
            say(f"demo data already loaded ({organizations} organizations); --reload replaces it")


def demo(args: argparse.Namespace) -> int:
    database = start_database()
    load_demo_data_if_needed(database, args)
    instance = get_instance(database.url())
    with database.connect() as conn:
        changes = sync_organization_partitions(instance, conn)
        keys = instance.get_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME)
        say(
            f"organization partitions: {len(keys)} ({len(changes.to_add)} added, {len(changes.to_delete)} removed);"
            f" refreshing customer_analytics ({args.mode}), checks and view"
        )
        succeeded = refresh_in_batches(instance, database, args.mode, args.batch_size)
        print_summary(conn)
    if not succeeded:
        say("some runs failed: see their run logs (`customer-analytics ui`)")
        return 1
    return 0


def ui(args: argparse.Namespace) -> int:
    """Runs `dagster dev` (webserver + daemon) against the project's database until stopped."""
    database = start_database()
    load_demo_data_if_needed(database, args)
    instance = get_instance(database.url())
    with database.connect() as conn:
        sync_organization_partitions(instance, conn)
    instance.dispose()
    say(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C stops it)")
    command = [sys.executable, "-m", "dagster", "dev", "-m", "customer_analytics_pipeline.definitions",
               "-h", args.host, "-p", str(args.port)]
    process = subprocess.Popen(command, env=os.environ.copy())
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()


def migrate(args: argparse.Namespace) -> None:
    database = database_from_environment()
    prepare_schema(database, demo_tables=False, source_indexes=args.source_indexes)
    say("pipeline schema is current" + (", optional source indexes in place" if args.source_indexes else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customer-analytics", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="load demo data and materialize customer_analytics for every organization")
    ui_parser = commands.add_parser("ui", help="start the Dagster UI and daemon (loads demo data into an empty database)")
    for subparser in (demo_parser, ui_parser):
        subparser.add_argument("--organizations", type=int, default=12)
        subparser.add_argument("--clients-per-org", type=int, default=400)
        subparser.add_argument("--seed", type=int, default=42)
        subparser.add_argument("--reload", action="store_true", help="replace the demo data")
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
    migrate_parser.set_defaults(run=migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "batch_size", 1) < 1:
        say("--batch-size must be at least 1")
        return 2
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
