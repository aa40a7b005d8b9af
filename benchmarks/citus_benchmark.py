"""Citus beside plain PostgreSQL (docs/citus.md, "What it costs"): the same generated data
in a scratch database on each, the same refreshes, checks, tick selection and view query,
timed one after the other in one run.

    CUSTOMER_ANALYTICS_CITUS_URL=postgresql://postgres@127.0.0.1:5460/citus \\
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    python benchmarks/citus_benchmark.py [--organizations 50 --clients-per-org 5000] [--report docs/citus.md]

Data: the project's synthetic generator (``dev/demo/synthetic_data.py``, COPY-loaded),
about 250,000 clients by default in organizations of skewed sizes. On Citus the
application's tables are distributed as docs/citus.md says and ``migrate`` distributes
the pipeline's. Refreshes run in batches balanced to CUSTOMER_ANALYTICS_CUSTOMERS_PER_RUN
(50,000) customers, as the schedules launch them. Measured, each on both databases:
full into empty tables, a no-op full, `recent` with nothing changed, `recent` after
about 3% of the customers changed (renamed clients, deleted payments, moved bookings),
the eight checks over every organization, the hourly tick's selection, and the view
for one organization. Both scratch databases are dropped at the end.
"""

import argparse
import os
import platform
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.checks.evaluation import evaluate_checks
from customer_analytics_pipeline.warehouse.citus import distribute_source_tables
from customer_analytics_pipeline.warehouse.migrations import apply_source_indexes, create_source_tables, migrate
from customer_analytics_pipeline.warehouse.refresh import RefreshParameters, refresh_customer_analytics
from customer_analytics_pipeline.warehouse.ticks import balanced_batches, organization_sizes, select_organizations_due
from customer_analytics_pipeline.warehouse.views import VIEW_NAME
from customer_analytics_pipeline_tests.citus_cluster import (
    CITUS_URL_VARIABLE,
    citus_url,
    create_citus_database,
    drop_citus_database,
)

REPORT_BEGIN = "<!-- citus_benchmark: begin (generated) -->"
REPORT_END = "<!-- citus_benchmark: end -->"
# About 3% of customers changed in the hour before `recent`, stamped weeks back.
CHANGES = (
    "UPDATE square_existing_clients SET given_name = coalesce(given_name, '') || '.', updated_at = %(stamp)s"
    " WHERE abs(hashtext(square_customer_id)) %% 100 < 2",
    "DELETE FROM payments WHERE abs(hashtext(id)) %% 400 = 0",
    "UPDATE bookings SET square_customer_id = NULL, updated_at = %(stamp)s WHERE abs(hashtext(id)) %% 400 = 0",
)


def create_database(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def prepare(url: str, citus: bool, data: GeneratorSettings) -> float:
    """Source tables (distributed on Citus), indexes, migrate, data; returns load seconds."""
    with psycopg.connect(url, autocommit=True) as conn:
        create_source_tables(conn)
        if citus:
            distribute_source_tables(conn)
        apply_source_indexes(conn)
        migrate(conn)
        seconds = timed(lambda: generate(conn, data, progress=lambda message: None))
        conn.execute("VACUUM (ANALYZE)" if not citus else "ANALYZE")
    return seconds


def measure(url: str, data: GeneratorSettings) -> dict[str, float]:
    figures: dict[str, float] = {}
    as_of = data.anchor
    with psycopg.connect(url, autocommit=True) as conn:
        sizes = organization_sizes(conn, [r[0] for r in conn.execute("SELECT id::text FROM organizations ORDER BY id")])
        batches = [[o.organization_id for o in batch]
                   for batch in balanced_batches(sizes, Settings().customers_per_run)]
        keys = [o.organization_id for o in sizes]

        def refresh_all(mode: str, at) -> None:
            for batch in batches:
                refresh_customer_analytics(conn, batch, RefreshParameters(mode=mode, as_of=at))

        figures["full into empty tables"] = timed(lambda: refresh_all("full", as_of))
        figures["full, nothing changed"] = timed(lambda: refresh_all("full", as_of))
        hour = as_of + timedelta(hours=1)
        figures["recent, nothing changed"] = timed(lambda: refresh_all("recent", hour))
        for statement in CHANGES:
            conn.execute(statement, {"stamp": as_of - timedelta(days=30)})
        later = as_of + timedelta(hours=2)
        figures["hourly tick's selection (after 3% changed)"] = timed(
            lambda: select_organizations_due(conn, keys, RefreshParameters(mode="recent", as_of=later)))
        figures["recent, 3% of customers changed"] = timed(lambda: refresh_all("recent", later))
        figures["the eight checks"] = timed(lambda: [evaluate_checks(conn, batch) for batch in batches])
        largest = sizes and max(sizes, key=lambda o: o.customers).organization_id
        query = sql.SQL("SELECT * FROM {} WHERE organization_id = %s").format(sql.Identifier(VIEW_NAME))
        figures["view, largest organization"] = timed(lambda: conn.execute(query, (largest,)).fetchall())
    return figures


def report(data: GeneratorSettings, clients: int, loads: dict[str, float], results: dict[str, dict[str, float]],
           citus_version: str, workers: int) -> str:
    lines = [
        f"Measured by `benchmarks/citus_benchmark.py` on {platform.machine()} with {os.cpu_count()} cores: "
        f"{clients:,} clients in {data.organizations} organizations (seed {data.seed}), Citus {citus_version} "
        f"(a coordinator and {workers} workers on the same machine) beside plain PostgreSQL, one after the other "
        "in one run. Seconds; the ratio is Citus / PostgreSQL.",
        "",
        "| step | PostgreSQL (s) | Citus (s) | ratio |",
        "|---|---:|---:|---:|",
        f"| load (COPY) | {loads['postgres']:.1f} | {loads['citus']:.1f} | {loads['citus'] / loads['postgres']:.2f} |",
    ]
    for step, seconds in results["postgres"].items():
        on_citus = results["citus"][step]
        lines.append(f"| {step} | {seconds:.2f} | {on_citus:.2f} | {on_citus / max(seconds, 1e-9):.2f} |")
    return "\n".join(lines) + "\n"


def write_report(path: Path, text: str) -> None:
    block = f"{REPORT_BEGIN}\n{text}{REPORT_END}"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if REPORT_BEGIN in current and REPORT_END in current:
        current = re.sub(re.escape(REPORT_BEGIN) + ".*?" + re.escape(REPORT_END), lambda m: block, current,
                         flags=re.S)
    else:
        current = current + ("\n" if current else "") + block + "\n"
    path.write_text(current, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--organizations", type=int, default=50)
    parser.add_argument("--clients-per-org", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--report", type=Path, help="a Markdown file whose benchmark block to replace")
    args = parser.parse_args(argv)
    postgres_server = os.environ.get("DATABASE_URL")
    if not postgres_server:
        print("DATABASE_URL must name the PostgreSQL server to compare with", file=sys.stderr)
        return 2
    coordinator = citus_url()
    data = GeneratorSettings(organizations=args.organizations, clients_per_org=args.clients_per_org, seed=args.seed)
    name = f"ca_bench_{uuid.uuid4().hex[:10]}"
    postgres_url = make_conninfo(**{**conninfo_to_dict(postgres_server), "dbname": name})
    citus_database = None
    try:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            create_database(admin, name)
        citus_database = create_citus_database(coordinator, name, create_database)
        loads = {"postgres": prepare(postgres_url, False, data), "citus": prepare(citus_database, True, data)}
        with psycopg.connect(citus_database) as conn:
            clients = conn.execute("SELECT count(*) FROM square_existing_clients").fetchone()[0]
            version = conn.execute("SELECT (regexp_match(citus_version(), 'Citus ([0-9.]+)'))[1]").fetchone()[0]
            workers = conn.execute("SELECT count(*) FROM pg_dist_node WHERE groupid > 0").fetchone()[0]
        results = {}
        for side, url in (("postgres", postgres_url), ("citus", citus_database)):
            results[side] = measure(url, data)
            print(side, {step: round(seconds, 2) for step, seconds in results[side].items()}, flush=True)
        text = report(data, clients, loads, results, version, workers)
        print(text)
        if args.report:
            write_report(args.report, text)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if citus_database:
            drop_citus_database(coordinator, name)
    return 0


if __name__ == "__main__":
    if not os.environ.get(CITUS_URL_VARIABLE):
        print(f"{CITUS_URL_VARIABLE} must name a Citus coordinator (.ci/citus-cluster start)", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
