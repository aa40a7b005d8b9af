"""``customer-analytics demo`` and ``ui``: a newcomer's way from nothing to a refreshed
table and the Dagster UI, on a database of their own (they refuse any other, see
``demo/demo_database.py``). ``demo`` runs the refresh job the schedules run over every
organization in batches and prints progress; ``ui`` brings up ``dg dev`` (webserver and
daemon) on the same database.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg
from dagster import BetaWarning, DagsterInstance, PreviewWarning

from customer_analytics_pipeline.defs.factory import build_definitions, database_resource
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    sync_organization_partitions,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.defs.schedules import batches
from customer_analytics_pipeline.dev.dagster_instance import (
    DAGSTER_STORAGE_DATABASE,
    ensure_dagster_storage_database,
    get_instance,
    sqlalchemy_url,
)
from customer_analytics_pipeline.dev.demo.demo_database import (
    NotADemoDatabase,
    create_demo_source_tables,
    demo_organization_count,
    load_demo_data,
    refuse_unless_demo_database,
)
from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings
from customer_analytics_pipeline.dev.pgbouncer import PgBouncerUnavailable, running_pgbouncer
from customer_analytics_pipeline.operations.commands import prepare_schema, say
from customer_analytics_pipeline.operations.serve import STOP_SIGNALS, PortInUse, refuse_taken_port
from customer_analytics_pipeline.settings import DATABASE_URL_VARIABLE, load_settings

# The command prints its own progress. Dagster's notices that single-run backfills and
# freshness policies are beta/preview APIs (a choice recorded in docs/decisions), and
# platformdirs' note about XDG_RUNTIME_DIR, would only be noise here.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

# How long `ui` waits for `dg dev` to stop its processes before killing them.
UI_SHUTDOWN_SECONDS = 15


def run(args: argparse.Namespace) -> int:
    try:
        return demo(args) if args.command == "demo" else ui(args)
    except (NotADemoDatabase, PortInUse) as refusal:
        say(f"error: {refusal}")
        return 2


def refresh_in_batches(instance: DagsterInstance, mode: str, batch_size: int) -> bool:
    """Runs the refresh job (customer_analytics, its checks, the view) over every
    organization partition in partition-range runs of ``batch_size``, as the schedules
    do; True when every run succeeded."""
    # Bound through EnvVar("DATABASE_URL") like the code location: the run storage keeps
    # the variable's name, never its value.
    settings = load_settings()
    job = build_definitions(settings, database_resource(settings)).resolve_job_def(REFRESH_JOB_NAME)
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
            metadata = refreshed[0].metadata  # every partition's event carries the batch's totals
            summary = (
                f"{metadata['batch_rows'].value} rows ({metadata['batch_rows_inserted'].value} inserted, "
                f"{metadata['batch_rows_updated'].value} updated)"
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
    """The table's segments, then each organization by name: customers and revenue."""
    rows = conn.execute(
        "SELECT customer_segment, count(*), sum(total_revenue_cents) FROM customer_analytics"
        " GROUP BY customer_segment ORDER BY customer_segment"
    ).fetchall()
    organizations = conn.execute(
        "SELECT o.name, o.id::text, count(a.square_customer_id), coalesce(sum(a.total_revenue_cents), 0)"
        " FROM organizations o LEFT JOIN customer_analytics a ON a.organization_id = o.id"
        " GROUP BY o.id, o.name ORDER BY o.name, o.id"
    ).fetchall()
    say(f"customer_analytics: {sum(r[1] for r in rows)} customers in {len(organizations)} organizations")
    for segment, customers, revenue in rows:
        say(f"  {segment:<8} {customers:>9} customers  revenue {revenue / 100:>14,.2f}")
    width = max((len(name) for name, *_ in organizations), default=0)
    for name, organization_id, customers, revenue in organizations:
        say(f"  {name:<{width}}  {organization_id}  {customers:>7} customers  revenue {revenue / 100:>14,.2f}")


def start_demo_database(args: argparse.Namespace) -> PostgresResource:
    """DATABASE_URL's database or the embedded one, refused unless it is the demo's own;
    then the schema and, when it has none yet (or on --reload), the demo data."""
    database = PostgresResource.from_settings(load_settings(), os.environ.get(DATABASE_URL_VARIABLE) or None)
    where = f"embedded PostgreSQL in {database.embedded_data_dir}" if database.uses_embedded_server else "DATABASE_URL"
    say(f"database: {where}")
    with database.connect() as conn:
        refuse_unless_demo_database(conn)
    with database.connect() as conn:
        create_demo_source_tables(conn)
    prepare_schema(database.database(), source_indexes=True)
    with database.connect() as conn:
        organizations = demo_organization_count(conn)
        if organizations and not args.reload:
            say(f"demo data already loaded ({organizations} organizations); --reload replaces it")
            return database
        say("loading demo data")
        # Anchored at today so the demo's segments look like a live business.
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
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


def pooled_dagster_storage(stack: ExitStack, database_url: str) -> None:
    """Points DAGSTER_POSTGRES_URL (unless set already) at the ``dagster`` database through
    a PgBouncer that ``stack`` stops, as README's production runbook has it; without
    pgbouncer (or when it cannot start) Dagster reaches its storage directly."""
    if os.environ.get("DAGSTER_POSTGRES_URL"):
        return
    try:
        bouncer = stack.enter_context(running_pgbouncer(database_url))
    except (PgBouncerUnavailable, RuntimeError, OSError) as error:
        say(f"Dagster storage reached directly ({error})")
        return
    ensure_dagster_storage_database(database_url)
    os.environ["DAGSTER_POSTGRES_URL"] = sqlalchemy_url(bouncer.url(DAGSTER_STORAGE_DATABASE))
    say(f"Dagster storage through PgBouncer on 127.0.0.1:{bouncer.port}")


def ui(args: argparse.Namespace) -> int:
    """Runs `dg dev` (webserver + daemon) against the demo database until stopped by
    Ctrl-C or SIGTERM, either of which shuts `dg dev` and every process it started down,
    whatever signal dispositions this command inherited (a script's `cmd &` starts it with
    SIGINT ignored, which `dg dev` would inherit and so never stop); Dagster's storage
    through PgBouncer when it is installed."""
    refuse_taken_port(args.host, args.port)
    database = start_demo_database(args)
    with ExitStack() as stack:
        pooled_dagster_storage(stack, database.url())
        return run_dagster_dev(args, database)


def run_dagster_dev(args: argparse.Namespace, database: PostgresResource) -> int:
    instance = get_instance(database.url())
    with database.connect() as conn:
        sync_organization_partitions(instance, conn)
    instance.dispose()
    say(f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C stops it)")
    # `dg dev`: `dagster dev`'s webserver and daemon, without its warning that it is
    # superseded by `dg dev`. Given the module, it needs no project around it; run in
    # DAGSTER_HOME, its instance, because `dagster dev` warns of any dagster.yaml in its
    # current folder but DAGSTER_HOME's, such as the repository's development one
    # (docs/decisions/0028).
    command = [sys.executable, "-m", "dagster_dg_cli.cli", "dev", "-m", "customer_analytics_pipeline.definitions",
               "-h", args.host, "-p", str(args.port)]

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Handlers of our own (not SIG_IGN) become SIG_DFL in the child: `dg dev` then
    # turns SIGINT into its own shutdown. Its process group is its own, so a terminal's
    # Ctrl-C reaches it once, through us, and a leftover can be found and stopped.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    process = subprocess.Popen(command, env=os.environ.copy(), cwd=os.environ["DAGSTER_HOME"], start_new_session=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # `dg dev` stops its webserver, daemon and code server on SIGINT.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=UI_SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        return 0
    finally:
        stop_process_group(process.pid)


def stop_process_group(group: int) -> None:
    """SIGKILL to whatever is left of a process group (nothing, after a clean shutdown)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
