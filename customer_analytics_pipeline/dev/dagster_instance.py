"""The Dagster instance of the command line and the UI: $DAGSTER_HOME (default
./.dagster_home) with production's deploy/dagster.yaml, its storage in a ``dagster``
database on the project's PostgreSQL server (embedded or DATABASE_URL's)."""

import os
import shutil
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from dagster import DagsterInstance
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_DAGSTER_HOME = ".dagster_home"
DAGSTER_STORAGE_DATABASE = "dagster"
# Dagster stores a run's per-partition materialization events (two per organization of
# the run) in batches of this many instead of one INSERT each (docs/operations.md, Environment).
EVENT_BATCH_SIZE_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "1000"
# A partition-range run writes one planned event per asset with its partition subset
# instead of one per partition, each an INSERT of its own (README's Environment says what
# the UI then shows for the partitions of a failed run).
PARTITION_SUBSET_VARIABLE = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
# The environment README's production runbook gives every Dagster process (run workers
# inherit it): `ui` and the benchmarks set the same.
DAGSTER_RUN_ENVIRONMENT = {EVENT_BATCH_SIZE_VARIABLE: EVENT_BATCH_SIZE, PARTITION_SUBSET_VARIABLE: "true"}
# Production's instance settings (the repository root's dagster.yaml is the development
# instance of `dg dev` without DAGSTER_HOME, without storage: docs/decisions/0028).
PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"


def ensure_dagster_storage_database(database_url: str) -> None:
    """Creates the ``dagster`` database on the project's server when missing."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DAGSTER_STORAGE_DATABASE,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DAGSTER_STORAGE_DATABASE)))


def sqlalchemy_url(conninfo: str) -> str:
    """A libpq URL or conninfo string as the SQLAlchemy URL dagster-postgres needs."""
    parts = conninfo_to_dict(conninfo)
    user = quote(parts.pop("user", None) or "postgres", safe="")
    auth = f"{user}:{quote(parts.pop('password', None) or '', safe='')}@"
    host, port = parts.pop("host", None), parts.pop("port", None)
    dbname = quote(parts.pop("dbname", None) or "postgres", safe="")
    if host and host.startswith("/"):  # a Unix-socket directory goes in the query string
        parts = {"host": host, **({"port": port} if port else {}), **parts}
        location = ""
    else:
        location = (host or "localhost") + (f":{port}" if port else "")
    query = f"?{urlencode(parts)}" if parts else ""
    # dagster-postgres is written for psycopg2; SQLAlchemy 2.1 would pick psycopg 3 for a
    # bare postgresql:// URL, whose server-side binding breaks its NOTIFY statements.
    return f"postgresql+psycopg2://{auth}{location}/{dbname}{query}"


def dagster_storage_url(database_url: str) -> str:
    """The SQLAlchemy URL of the ``dagster`` database on the project's server."""
    return sqlalchemy_url(make_conninfo(database_url, dbname=DAGSTER_STORAGE_DATABASE))


def prepare_dagster_environment(database_url: str) -> dict[str, str]:
    """Exports DAGSTER_HOME (with deploy/dagster.yaml), DAGSTER_POSTGRES_URL,
    DATABASE_URL and DAGSTER_RUN_ENVIRONMENT (where not set already) for this process and
    the processes it starts; returns them."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if PROJECT_DAGSTER_YAML.is_file() and PROJECT_DAGSTER_YAML != (home / "dagster.yaml").resolve():
        shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    storage_url = os.environ.get("DAGSTER_POSTGRES_URL")
    if not storage_url:
        ensure_dagster_storage_database(database_url)
        storage_url = dagster_storage_url(database_url)
    exported = {
        "DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_URL": storage_url, "DATABASE_URL": database_url,
        **{name: os.environ.get(name) or value for name, value in DAGSTER_RUN_ENVIRONMENT.items()},
    }
    os.environ.update(exported)
    return exported


def get_instance(database_url: str) -> DagsterInstance:
    prepare_dagster_environment(database_url)
    return DagsterInstance.get()
