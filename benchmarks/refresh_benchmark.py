"""Refresh benchmark: prints timings and ratios measured side by side in one run.

    python benchmarks/refresh_benchmark.py --organizations 20 --clients-per-org 20000

Uses a scratch database on DATABASE_URL's server (or the embedded one) and drops it
afterwards. Figures: data load, full refresh, a rerun that changes nothing, a recent
refresh after 1% of customers changed, and the dashboard query on the daily view.
"""

import argparse
import os
import resource
import time
import uuid
from datetime import timedelta

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings, generate
from customer_analytics_pipeline.settings import load_settings
from customer_analytics_pipeline.warehouse.connection import embedded_database_url
from customer_analytics_pipeline.warehouse.migrations import (
    apply_migrations,
    apply_source_indexes,
    create_source_tables,
)
from customer_analytics_pipeline.warehouse.organizations import organization_keys
from customer_analytics_pipeline.warehouse.refresh import RefreshParameters, refresh_customer_analytics
from customer_analytics_pipeline.warehouse.views import VIEW_NAME, ensure_view


def timed(label: str, figures: dict, function):
    began = time.perf_counter()
    result = function()
    figures[label] = time.perf_counter() - began
    print(f"{label:<42} {figures[label]:8.2f} s", flush=True)
    return result


def run(conn: psycopg.Connection, settings: GeneratorSettings) -> None:
    figures: dict[str, float] = {}
    create_source_tables(conn)
    timed("load data (COPY)", figures, lambda: generate(conn, settings, progress=lambda m: None))
    timed("optional source indexes", figures, lambda: apply_source_indexes(conn))
    apply_migrations(conn)
    conn.execute("ANALYZE")
    organizations = organization_keys(conn)
    (clients,) = conn.execute("SELECT count(*) FROM square_existing_clients").fetchone()
    (bookings,) = conn.execute("SELECT count(*) FROM bookings").fetchone()
    print(f"{len(organizations)} organizations, {clients:,} clients, {bookings:,} bookings")
    as_of = settings.anchor

    def refresh(mode, at=as_of):
        return refresh_customer_analytics(conn, organizations, RefreshParameters(mode=mode, as_of=at))

    first = timed("full refresh, empty table", figures, lambda: refresh("full"))
    again = timed("full refresh, nothing changed", figures, lambda: refresh("full"))
    recent_same = timed("recent refresh, nothing changed", figures, lambda: refresh("recent"))
    later = as_of + timedelta(hours=1)
    conn.execute(
        "UPDATE bookings SET seller_note = 'benchmark touch', updated_at = %s WHERE (hashtext(id) & 127) = 0", (later,)
    )
    recent = timed("recent refresh after ~1% bookings changed", figures, lambda: refresh("recent", later))
    ensure_view(conn)
    organization = max(organizations, key=lambda o: conn.execute(
        "SELECT count(*) FROM bookings WHERE organization_id = %s", (o,)).fetchone()[0])
    timed("dashboard: 1 org x 30 days on the view", figures, lambda: conn.execute(
        sql.SQL("SELECT * FROM {} WHERE organization_id = %s AND day >= %s").format(sql.Identifier(VIEW_NAME)),
        (organization, (as_of - timedelta(days=30)).date()),
    ).fetchall())

    print()
    print(f"rows written: first {first.total('rows_inserted'):,}; rerun {again.total('rows_updated'):,}; "
          f"recent {recent.total('rows_updated'):,} of {recent.rows_recomputed:,} recomputed")
    print(f"clients per second, full refresh: {clients / figures['full refresh, empty table']:,.0f}")
    rerun, first = figures["full refresh, nothing changed"], figures["full refresh, empty table"]
    recent_changed, recent_unchanged = (
        figures["recent refresh after ~1% bookings changed"], figures["recent refresh, nothing changed"]
    )
    print(f"ratio rerun / first full:          {rerun / first:.2f}")
    print(f"ratio recent (1% changed) / full:  {recent_changed / rerun:.2f}")
    print(f"ratio recent (no change) / full:   {recent_unchanged / rerun:.2f}")
    print(f"peak client memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          f"(recent recomputed {recent_same.rows_recomputed:,} customers with nothing changed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--organizations", type=int, default=10)
    parser.add_argument("--clients-per-org", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL") or embedded_database_url(load_settings().embedded_data_dir)
    name = f"ca_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(make_conninfo(**{**conninfo_to_dict(server), "dbname": name}), autocommit=True) as conn:
            run(conn, GeneratorSettings(organizations=args.organizations, clients_per_org=args.clients_per_org,
                                        seed=args.seed))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
