"""The PostgreSQL resource: the database named by DATABASE_URL, or an embedded server."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

import psycopg
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from customer_analytics_pipeline.settings import Settings
from customer_analytics_pipeline.warehouse.connection import Database, SessionLimits

DEFAULT_LIMITS = SessionLimits()


class PostgresResource(ConfigurableResource):
    """Connections (psycopg 3) to the database holding the source and analytics tables.

    ``database_url`` is bound to the ``DATABASE_URL`` environment variable through
    ``EnvVar`` so it never shows in the UI, the run storage or the logs. Left unset, an
    embedded PostgreSQL is started on ``embedded_data_dir`` so a newcomer needs no
    server. The session limits are those of ``SessionLimits``.
    """

    database_url: Optional[str] = Field(
        default=None, description="libpq URL of the database; unset means an embedded PostgreSQL."
    )
    embedded_data_dir: str = Field(
        default=Settings().embedded_data_dir,
        description="Data folder of the embedded PostgreSQL, used only without database_url.",
    )
    statement_timeout_seconds: int = Field(
        default=DEFAULT_LIMITS.statement_timeout_seconds, ge=0, description="Longest a statement may run (0: no limit)."
    )
    lock_timeout_seconds: int = Field(
        default=DEFAULT_LIMITS.lock_timeout_seconds, ge=0,
        description="Longest a statement may wait for a lock (0: no limit).",
    )
    idle_in_transaction_timeout_seconds: int = Field(
        default=DEFAULT_LIMITS.idle_in_transaction_timeout_seconds, ge=0,
        description="A session idle this long inside a transaction is ended (0: never).",
    )

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str | EnvVar | None) -> "PostgresResource":
        """The resource for ``database_url`` (an EnvVar in the code location, the value
        itself outside a Dagster run) with the embedded folder and session limits of
        ``settings``."""
        limits = settings.session_limits
        return cls(
            database_url=database_url,
            embedded_data_dir=settings.embedded_data_dir,
            statement_timeout_seconds=limits.statement_timeout_seconds,
            lock_timeout_seconds=limits.lock_timeout_seconds,
            idle_in_transaction_timeout_seconds=limits.idle_in_transaction_timeout_seconds,
        )

    @property
    def uses_embedded_server(self) -> bool:
        return not self.database_url

    def database(self) -> Database:
        """The warehouse layer's handle on the same database and session limits."""
        return Database(
            self.database_url or None,
            self.embedded_data_dir,
            SessionLimits(
                self.statement_timeout_seconds, self.lock_timeout_seconds, self.idle_in_transaction_timeout_seconds
            ),
        )

    def url(self) -> str:
        """The libpq URL to connect to (starts the embedded server when needed)."""
        return self.database().connection_url()

    @contextmanager
    def connect(self, watch_lock_waits: bool = False) -> Iterator[psycopg.Connection]:
        """A new autocommit connection with the session limits set; with
        ``watch_lock_waits`` a lock timeout names who held the lock (see ``connect``)."""
        with self.database().connect(watch_lock_waits) as conn:
            yield conn
