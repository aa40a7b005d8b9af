"""Small helpers shared by the tests."""

import signal
import socket
import urllib.request
from collections.abc import Sequence
from datetime import datetime

import psycopg
from dagster import JobDefinition

from customer_analytics_pipeline.defs.customer_analytics_asset import build_customer_analytics
from customer_analytics_pipeline.defs.factory import build_definitions
from customer_analytics_pipeline.defs.jobs import REFRESH_JOB_NAME
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.dev.demo.synthetic_data import GeneratorSettings
from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.refresh import RefreshParameters, RefreshResult, refresh_customer_analytics

# The generated data most tests run on (the `generated` fixture): small, every edge case.
GENERATED = GeneratorSettings(organizations=4, clients_per_org=120, seed=7)
# The customer_analytics asset as the code location builds it with default settings.
customer_analytics = build_customer_analytics(Settings())


def refresh_job(database_url: str) -> JobDefinition:
    """The job the schedules launch, bound to ``database_url``, default settings otherwise."""
    return build_definitions(Settings(), PostgresResource(database_url=database_url)).resolve_job_def(REFRESH_JOB_NAME)


def anchor(conn: psycopg.Connection | None = None) -> datetime:
    """The generator's "now": the instant the `generated` data is stamped around."""
    return GENERATED.anchor


def organization_ids(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id::text FROM organizations ORDER BY id")]


def refresh(conn: psycopg.Connection, mode: str, as_of: datetime, organizations=None, **kwargs) -> RefreshResult:
    """Refreshes the given organizations (default: all) the way the asset does."""
    return refresh_customer_analytics(
        conn, organizations or organization_ids(conn), RefreshParameters(mode=mode, as_of=as_of, **kwargs)
    )


def table_versions(conn: psycopg.Connection, organization_id: str | None = None) -> dict:
    """(xmin, ctid, updated_at) per key: any rewrite of a row changes its xmin and ctid."""
    rows = conn.execute(
        "SELECT organization_id::text, square_customer_id, xmin::text, ctid::text, updated_at"
        " FROM customer_analytics WHERE %(org)s::uuid IS NULL OR organization_id = %(org)s::uuid",
        {"org": organization_id},
    ).fetchall()
    return {(org, customer): rest for org, customer, *rest in rows}


def organizations_by_size(conn: psycopg.Connection) -> list[str]:
    """Organizations with clients, most clients first (the generator also makes empty ones)."""
    return [row[0] for row in conn.execute(
        "SELECT organization_id::text FROM square_existing_clients GROUP BY 1 ORDER BY count(*) DESC, 1"
    )]


def largest_organization(conn: psycopg.Connection) -> str:
    return organizations_by_size(conn)[0]


def with_signals_ignored(command: list[str], signals: Sequence[signal.Signals]) -> list[str]:
    """``command`` started with ``signals`` ignored, as a launcher may leave them (SIG_IGN
    survives exec), through ``sh``'s ``trap``: not Popen's ``preexec_fn``, which forks in a
    process whose gRPC threads (Dagster's clients) can deadlock the fork."""
    if not signals:
        return command
    names = " ".join(s.name.removeprefix("SIG") for s in signals)
    return ["sh", "-c", f'trap "" {names}; exec "$@"', "sh", *command]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serves(url: str) -> bool:
    """Whether ``url`` answers 200 now (a server that is still starting does not)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False
