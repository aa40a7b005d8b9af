"""Who a lock timeout waited for. PostgreSQL's own error says only "canceling statement
due to lock timeout", and once it is raised the session waits for nothing, so
``pg_blocking_pids`` has nothing left to say. While a pipeline session works, a thread
asks, from a connection of its own, whom the session waits for (``pg_locks``,
``pg_blocking_pids``; ``sql/lock_waits/``) a few times a second; the last answer before
the timeout is the holder, and the error carries it (``errors.describe`` shows it).

A lock timeout is at least a second long (``lock_timeout`` is set in whole seconds), so
a sample every half second sees every wait that times out. Best effort: a watcher that
cannot connect or query leaves the error as PostgreSQL raised it.
"""

import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

import psycopg

from customer_analytics_pipeline.warehouse.errors import note_lock_holders
from customer_analytics_pipeline.warehouse.locks import ORGANIZATION_LOCK_NAMESPACE
from customer_analytics_pipeline.warehouse.sql_files import load_sql

SAMPLE_INTERVAL_SECONDS = 0.5
LOCK_HOLDERS_SQL = "lock_waits/lock_holders.sql"


def lock_mode_text(modes: str) -> str:
    """pg_locks' mode names as SQL spells them: "AccessExclusiveLock" -> "ACCESS EXCLUSIVE"."""
    return ", ".join(re.sub(r"(?<!^)(?=[A-Z])", " ", mode.strip().removesuffix("Lock")).upper()
                     for mode in modes.split(","))


def lock_holder_text(row: tuple, pipeline_application_name: str) -> str:
    """One blocking session, as a lock timeout's message names it."""
    pid, application_name, role, state, locktype, relation, held_mode, organization_id = row
    if locktype == "advisory" and organization_id:
        lock = f"the refresh lock of organization {organization_id}"
    elif locktype == "advisory":
        lock = "an advisory lock"
    elif locktype in ("transactionid", "tuple"):
        lock = f"a row lock on table {relation}" if relation else "a row lock"
    elif relation and held_mode:
        mode = lock_mode_text(held_mode)
        lock = f"{'an' if mode[0] in 'AEIOU' else 'a'} {mode} lock on table {relation}"
    elif relation:
        lock = f"a lock on table {relation}"
    else:
        lock = f"a {locktype} lock"
    if application_name == pipeline_application_name:
        who = f"another refresh (pid {pid})" if locktype == "advisory" else f"another pipeline session (pid {pid})"
    else:
        who = (f"the application or another client (pid {pid}, role {role}, application_name "
               f"{application_name or '(none)'!r}, {state})")
    return f"{lock} held by {who}"


class LockWaitWatch:
    """Samples whom the session ``pid`` waits for until stopped; ``holders`` is the last
    non-empty answer (None while it never waited)."""

    def __init__(self, connect: Callable[[], AbstractContextManager[psycopg.Connection]], pid: int,
                 pipeline_application_name: str):
        self.connect, self.pid, self.application_name = connect, pid, pipeline_application_name
        self.holders: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"lock-wait-watch-{pid}", daemon=True)

    def __enter__(self) -> "LockWaitWatch":
        self._thread.start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        self._thread.join()
        if isinstance(error, psycopg.errors.LockNotAvailable) and self.holders:
            note_lock_holders(error, self.holders)

    def _watch(self) -> None:
        try:
            with self.connect() as conn:
                params = {"pid": self.pid, "lock_namespace": ORGANIZATION_LOCK_NAMESPACE}
                while not self._stop.wait(SAMPLE_INTERVAL_SECONDS):
                    rows = conn.execute(load_sql(LOCK_HOLDERS_SQL), params).fetchall()
                    if rows:
                        self.holders = "; ".join(lock_holder_text(row, self.application_name) for row in rows)
        except (psycopg.Error, OSError):
            return  # best effort: the error then says what PostgreSQL said
