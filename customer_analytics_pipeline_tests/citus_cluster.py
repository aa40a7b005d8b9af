"""Scratch databases on a Citus cluster: the same database on the coordinator and on every
worker, the ``citus`` extension in each, and the workers registered in the new
database's metadata (Citus keeps its node list per database)."""

import os

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The coordinator of a running Citus cluster (docs/citus.md, "Tests"); `.ci/run` starts one.
CITUS_URL_VARIABLE = "CUSTOMER_ANALYTICS_CITUS_URL"


def citus_url() -> str:
    """The coordinator's URL, or a failure that says how to get one (never a skip)."""
    url = os.environ.get(CITUS_URL_VARIABLE)
    if not url:
        raise RuntimeError(
            f"{CITUS_URL_VARIABLE} is not set: the Citus tests need a Citus cluster's coordinator "
            "(`.ci/citus-cluster start` builds and starts one and prints its URL; docs/citus.md, \"Tests\"), "
            "or deselect them with `-m 'not citus'`"
        )
    return url


def _node_url(coordinator_url: str, host: str, port: int, dbname: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(coordinator_url), "host": host, "port": str(port), "dbname": dbname})


def cluster_nodes(coordinator_url: str) -> tuple[tuple[str, int], list[tuple[str, int]]]:
    """(coordinator, workers) as (host, port), read from the coordinator's own database."""
    with psycopg.connect(coordinator_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nodename, nodeport, groupid = 0 FROM pg_dist_node WHERE isactive ORDER BY groupid"
        ).fetchall()
    coordinator = [(host, port) for host, port, is_coordinator in rows if is_coordinator]
    workers = [(host, port) for host, port, is_coordinator in rows if not is_coordinator]
    if not workers:
        raise RuntimeError("the Citus coordinator has no active worker nodes")
    info = conninfo_to_dict(coordinator_url)
    return (coordinator[0] if coordinator else (info.get("host", "127.0.0.1"), int(info.get("port", 5432)))), workers


def create_citus_database(coordinator_url: str, name: str, create_database) -> str:
    """Creates ``name`` on every node with ``create_database(admin, name)`` (so every node
    has the same default collation), adds the extension and registers the workers;
    returns the new database's URL on the coordinator."""
    coordinator, workers = cluster_nodes(coordinator_url)
    for host, port in [coordinator, *workers]:
        with psycopg.connect(_node_url(coordinator_url, host, port, "postgres"), autocommit=True) as admin:
            create_database(admin, name)
        with psycopg.connect(_node_url(coordinator_url, host, port, name), autocommit=True) as conn:
            conn.execute("SET client_min_messages = warning")
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    url = _node_url(coordinator_url, *coordinator, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT citus_set_coordinator_host(%s, %s)", coordinator)
        for host, port in workers:
            conn.execute("SELECT citus_add_node(%s, %s)", (host, port))
    return url


def drop_citus_database(coordinator_url: str, name: str) -> None:
    """Drops ``name`` on the coordinator first (which ends its connections to the workers),
    then on every worker."""
    coordinator, workers = cluster_nodes(coordinator_url)
    for host, port in [coordinator, *workers]:
        with psycopg.connect(_node_url(coordinator_url, host, port, "postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
