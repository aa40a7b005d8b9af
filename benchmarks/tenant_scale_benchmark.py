"""Tenant-scale benchmark: what Dagster's orchestration costs per organization when there
are many small ones, for the nightly and the hourly schedule as production runs them.

    python benchmarks/tenant_scale_benchmark.py                          # 2,000, 20,000 and 100,000 organizations
    python benchmarks/tenant_scale_benchmark.py --sizes 2000,20000          # 13 minutes on 2 busy cores
    python benchmarks/tenant_scale_benchmark.py --sizes 30 --customers-per-run 100 --report /tmp/tenants.md   # smoke

The 100,000-organization size took 18 minutes more when range runs reported batched
outputs; with one event per organization and table written alone (the code as it is),
its nightly tick alone adds about 100,000 x 14 ms of orchestration.

Per size (organizations) it generates, inside PostgreSQL with refresh_benchmark's
generator, a long tail of organizations (organization k has clients proportional to
1/k^0.8, about 10 clients per organization on average, so most have a handful), registers
one `organizations` partition each in a throwaway Dagster instance whose storage is a
PostgreSQL database of its own, with the environment README's production runbook gives
Dagster, and then measures three schedule ticks: `nightly_full_refresh`, then
`hourly_recent_refresh` after 5% of the organizations changed (status flips, late-synced
rows stamped weeks back, hard deletes) and again with nothing changed. Each tick is the
schedule of `build_definitions(settings)` evaluated with `build_schedule_context`, and
every run request it yields executed through the instance, one after another, whatever
the schedule asks for.

Everything runs in a scratch database on the server of ``--server-url`` (default
``DATABASE_URL``, else the embedded server), dropped at the end. The figures go to stdout
and between this benchmark's markers in ``--report`` (default ``docs/performance.md``).
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster
import psycopg
from psycopg import sql

from customer_analytics_pipeline.defs.factory import build_definitions
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.dev.dagster_instance import PARTITION_SUBSET_VARIABLE
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.connection import SessionLimits, connect
from customer_analytics_pipeline.warehouse.migrations import apply_source_indexes, create_source_tables, migrate
from customer_analytics_pipeline.warehouse.organizations import organization_keys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refresh_benchmark import (  # noqa: E402  (a sibling script, not a package)
    QUIET_CONSOLE,
    BackendMemory,
    BenchmarkInstance,
    Figures,
    Tick,
    benchmark_instances,
    change_customers,
    describe_data,
    elapsed_since,
    execute_tick,
    generate,
    machine,
    process_peak_mb,
    ratio,
    reset_schema,
    scratch_database,
    settle,
    start_benchmark,
    timed_database_work,
    write_report,
)

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_REPORT = REPOSITORY / "docs" / "performance.md"
REPORT_BEGIN = "<!-- tenant_scale_benchmark: begin (generated; text outside these markers is kept) -->"
REPORT_END = "<!-- tenant_scale_benchmark: end -->"
NIGHTLY_SCHEDULE = "nightly_full_refresh"
HOURLY_SCHEDULE = "hourly_recent_refresh"

# The hourly change: ``share`` of the organizations, up to three customers each, every
# customer one of a status flip (a booking updated now), a late sync (a booking and its
# payment inserted and a payment refunded, stamped 30-80 days back) or a hard delete (a
# booking and a payment). refresh_benchmark's change statements apply them.
CHANGED_ORGANIZATIONS_SQL = """
CREATE TEMP TABLE benchmark_changes AS
SELECT organization_id, square_customer_id, kind, square_customer_id AS move_to
FROM (
    SELECT c.organization_id, c.square_customer_id,
           (ARRAY['touch', 'late', 'delete'])[1 + floor(random() * 3)::int] AS kind,
           row_number() OVER (PARTITION BY c.organization_id ORDER BY random()) AS n
    FROM square_existing_clients AS c
    JOIN (SELECT id FROM organizations ORDER BY random()
          LIMIT (SELECT ceil(count(*) * %(share)s::float8) FROM organizations)) AS o ON o.id = c.organization_id
) AS drawn
WHERE n <= 3
"""


def add_tick_figures(figures: Figures, name: str, label: str, tick: Tick, organizations: int) -> None:
    """The figures of one tick: wall, runs, events, database work and what is left of it
    (orchestration) per organization of the size."""
    per_type = ", ".join(f"{kind} {count:,}" for kind, count in tick.events_by_type.most_common())
    figures.add(f"{name}_wall", f"{label}: tick wall", tick.wall_seconds, "s",
                f"schedule evaluation {tick.schedule_seconds:.2f} s; {tick.failed_runs} runs failed"
                + (f": {tick.first_failure}" if tick.failed_runs else ""))
    figures.add(f"{name}_runs", f"{label}: runs", tick.runs, "", f"{tick.organizations:,} organizations refreshed")
    figures.add(f"{name}_events", f"{label}: Dagster events", tick.events, "", per_type or "none")
    figures.add(f"{name}_events_per_organization", f"{label}: Dagster events per organization",
                ratio(tick.events, organizations), "1/1")
    figures.add(f"{name}_sql", f"{label}: database work of the steps", tick.sql_seconds, "s",
                f"refresh {tick.refresh_sql_seconds:.2f} s, checks {tick.checks_seconds:.2f} s, "
                f"view {tick.view_sql_seconds:.2f} s; {tick.rows_recomputed:,} customers recomputed")
    figures.add(f"{name}_orchestration", f"{label}: orchestration = wall - database work",
                tick.orchestration_seconds, "s")
    figures.add(f"{name}_orchestration_per_organization", f"{label}: orchestration per organization",
                1000 * tick.orchestration_seconds / organizations, "ms")


# The storage setups compared side by side: (key, label, instance, subset planned
# events, synchronous_commit of the storage database). A direct instance opens a new
# connection per statement, so it sees a database-level setting at once.
SETUPS = (
    ("default", "Dagster's default (direct, planned per partition)", "direct", False, "on"),
    ("pgbouncer", "PgBouncer", "pgbouncer", False, "on"),
    ("subset", "subset planned events", "direct", True, "on"),
    ("production", "PgBouncer + subset (production)", "pgbouncer", True, "on"),
    ("async_commit", "subset + synchronous_commit off (not adopted)", "direct", True, "off"),
)


def set_storage_synchronous_commit(storage_url: str, value: str) -> None:
    with psycopg.connect(storage_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = {}").format(
            sql.Identifier(conn.info.dbname), sql.SQL(value)))


def compare_setups(instances: dict[str, BenchmarkInstance], definitions: dagster.Definitions,
                   keys: Sequence[str], as_of: datetime, rounds: int) -> dict[str, float]:
    """One full refresh run of the same ``keys`` (a partition range) under each setup of
    SETUPS, the setups' order reversed every other round; orchestration (wall - database
    work) per organization in ms, per setup."""
    job = definitions.resolve_job_def(REFRESH_JOB_NAME)
    request = {"run_config": {"ops": {"customer_analytics": {"config": {"mode": "full", "as_of": as_of.isoformat()}}},
                              **QUIET_CONSOLE},
               "tags": {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]}}
    orchestration = dict.fromkeys((key for key, *_ in SETUPS), 0.0)
    saved = os.environ.get(PARTITION_SUBSET_VARIABLE)
    storage_url = instances["direct"].storage_url
    try:
        for number in range(rounds):
            for key, _, instance, subset, synchronous_commit in SETUPS if number % 2 == 0 else reversed(SETUPS):
                os.environ[PARTITION_SUBSET_VARIABLE] = "true" if subset else "false"
                set_storage_synchronous_commit(storage_url, synchronous_commit)
                tick = Tick()
                with timed_database_work(tick):
                    started = time.perf_counter()
                    result = job.execute_in_process(instance=instances[instance].instance, raise_on_error=False,
                                                    **request)
                    tick.wall_seconds = elapsed_since(started)
                if not result.success:
                    raise RuntimeError(f"the {key} run failed: {result.get_run_failure_event()}")
                orchestration[key] += tick.orchestration_seconds
    finally:
        os.environ[PARTITION_SUBSET_VARIABLE] = saved or "true"
        set_storage_synchronous_commit(storage_url, "on")
    return {key: 1000 * seconds / (rounds * len(keys)) for key, seconds in orchestration.items()}


def run_size(url: str, organizations: int, args: argparse.Namespace) -> Figures:
    """Every figure for one size, in one pass over one data set."""
    size_started = time.perf_counter()
    figures = Figures()
    # Whole hours in the past: every stamp, the ticks' as_of included, precedes now().
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    settings = Settings(customers_per_run=args.customers_per_run)
    with connect(url, SessionLimits()) as conn, BackendMemory(url) as backend:
        reset_schema(conn)
        create_source_tables(conn)
        generate(conn, figures, organizations * args.clients_per_organization, organizations, anchor, args.seed)
        apply_source_indexes(conn)
        migrate(conn)
        settle(conn)
        describe_data(conn, figures, anchor)
        keys = organization_keys(conn)
        definitions = build_definitions(settings, PostgresResource(database_url=url))
        with benchmark_instances(url, keys) as instances:
            bench = instances["pgbouncer"]
            figures.add("storage_pooled", "Dagster storage through PgBouncer (1: yes, 0: direct)",
                        int(bench.storage_path == "through PgBouncer"))
            nightly = execute_tick(bench, definitions, NIGHTLY_SCHEDULE, anchor)
            add_tick_figures(figures, "nightly", "nightly", nightly, organizations)
            settle(conn)
            compared = min(args.compare_organizations, len(keys))
            if compared:
                per_setup = compare_setups(instances, definitions, keys[:compared], anchor, args.compare_rounds)
                for key, label, *_ in SETUPS:
                    figures.add(f"compare_{key}", f"side by side: {label}", per_setup[key], "ms",
                                f"orchestration per organization, {compared:,} organizations in one run")
                for key, label, *_ in SETUPS[1:]:
                    figures.add(f"compare_{key}_ratio", f"side by side: default / {label}",
                                ratio(per_setup["default"], per_setup[key]), "x")
                settle(conn)
            customers, touched = change_customers(conn, args.change_share, anchor + timedelta(hours=1),
                                                  CHANGED_ORGANIZATIONS_SQL)
            figures.add("changed_customers", f"customers changed in {args.change_share:.0%} of organizations",
                        customers, "", "; ".join(f"{name}: {rows:,}" for name, rows in touched.items()))
            conn.execute("ANALYZE")
            changed = execute_tick(bench, definitions, HOURLY_SCHEDULE, anchor + timedelta(hours=2))
            add_tick_figures(figures, "hourly_changed", f"hourly, {args.change_share:.0%} changed", changed,
                             organizations)
            settle(conn)
            unchanged = execute_tick(bench, definitions, HOURLY_SCHEDULE, anchor + timedelta(hours=3))
            add_tick_figures(figures, "hourly_unchanged", "hourly, nothing changed", unchanged, organizations)
    figures.add("process_memory", "peak memory: benchmark process (so far)", process_peak_mb(), "MB")
    figures.add("backend_memory", "peak memory: a PostgreSQL backend, resident", backend.peak_resident_mb, "MB")
    figures.add("size_seconds", "this size, start to end", elapsed_since(size_started), "s")
    return figures


def report_text(command: str, info: dict[str, str], sizes: Sequence[int], results: Sequence[Figures],
                total_seconds: float) -> str:
    """The generated part of docs/performance.md: machine, then every figure per size."""
    names = [f"{size:,}" for size in sizes]
    lines = [
        REPORT_BEGIN,
        "## Tenant scale: orchestration per organization",
        "",
        f"`{command}`: {', '.join(names)} organizations, total runtime **{total_seconds / 60:.1f} min**.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in info.items()),
        "",
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    keys = list(dict.fromkeys(key for result in results for key in result))
    for key in keys:
        label = next(result[key].label for result in results if key in result)
        cells = [result[key].text() if key in result else "" for result in results]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Details at {names[-1]}:", ""]
    lines += [f"- {figure.label}: {figure.note}" for figure in results[-1].values() if figure.note]
    lines += ["", METHOD, REPORT_END, ""]
    return "\n".join(lines)


METHOD = """How it is measured (`benchmarks/tenant_scale_benchmark.py`, one scratch database, sizes one after another):

- Data: refresh_benchmark's generator inside PostgreSQL: organization k has clients proportional to 1/k^0.8,
  10 clients per organization on average (so most organizations have a handful), 4 bookings per client.
- Dagster: `build_definitions(Settings(customers_per_run=...))`; a throwaway instance whose storage is a
  PostgreSQL database of its own on the same server, reached through PgBouncer (session pooling, started by
  `customer_analytics_pipeline/dev/pgbouncer.py`) with README's production environment
  (`DAGSTER_EVENT_BATCH_SIZE=1000`, `DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true`).
- A tick: the schedule evaluated with `build_schedule_context` (the definitions' resources) and every run
  request it yields executed in process through the instance, one after another. Nightly at the anchor;
  then 5% of the organizations changed (up to three customers each: a status flip, a late sync stamped
  30-80 days back, or a hard delete) and the hourly tick 2 h after the anchor; the hourly tick again 3 h after
  it with nothing changed.
- Database work: the time the runs spend in the warehouse functions their steps call (refresh, retention,
  checks, view), timed in process. Orchestration = tick wall - database work; it includes the schedule's
  evaluation (its own SQL too). Per organization: divided by all organizations of the size.
- Side by side: one full refresh run over the first organizations (a partition range) under each storage
  setup, the order reversed every other round, all on the same storage database; wall - database work.
  The last setup turns `synchronous_commit` off for the storage database (`ALTER DATABASE`) during its runs.
- Events: rows of the storage's event_logs for the tick's runs, by type. Memory: the benchmark process's
  `ru_maxrss`, the PostgreSQL backends' VmHWM sampled from /proc."""


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda text: [int(p.replace("_", "")) for p in text.split(",") if p],
                        default=[2_000, 20_000, 100_000], help="organization counts (default 2000,20000,100000)")
    parser.add_argument("--clients-per-organization", type=int, default=10, help="on average (default 10)")
    parser.add_argument("--customers-per-run", type=int, default=Settings().customers_per_run,
                        help="the schedules' run size (default: the setting's default, %(default)s)")
    parser.add_argument("--change-share", type=float, default=0.05, help="share of organizations changed")
    parser.add_argument("--compare-organizations", type=int, default=500,
                        help="organizations of the side-by-side run of each storage setup (0: none)")
    parser.add_argument("--compare-rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-url", default=os.environ.get("DATABASE_URL"),
                        help="libpq URL of the server (default DATABASE_URL, else the embedded server)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    args = parser.parse_args(argv)
    if not args.sizes or min(args.sizes) < 1 or args.clients_per_organization < 1 or args.customers_per_run < 1 \
            or not 0 < args.change_share < 1 or args.compare_rounds < 1:
        parser.error("sizes, clients, customers per run and rounds must be positive, --change-share in (0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    server, command = start_benchmark("tenant_scale_benchmark.py", args.server_url, argv)
    started = time.perf_counter()
    results = []
    with scratch_database(server) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            info = machine(conn)
        for organizations in args.sizes:
            print(f"\n== {organizations:,} organizations ==", flush=True)
            results.append(run_size(url, organizations, args))
    total = elapsed_since(started)
    info["load average at end"] = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\ntotal runtime {total / 60:.1f} min", flush=True)
    write_report(args.report, report_text(command, info, args.sizes, results, total), REPORT_BEGIN, REPORT_END)
    print(f"report written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
