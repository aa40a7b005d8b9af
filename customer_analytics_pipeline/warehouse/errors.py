"""Which database errors are worth another attempt, and what an operator should read.

Transient: the connection dropped or the server restarted, PostgreSQL chose the
transaction as a serialization or deadlock victim, a lock wait timed out (behind another
refresh, which the server ends after its idle timeout if it hung, or behind the
application: ``lock_waits`` names the holder), or the application deleted
a client or organization while the refresh wrote (a foreign-key violation a fresh
attempt no longer meets). Everything else (bad input, bad data, a missing privilege, a
statement timeout, a bug) would only fail the same way again.
"""

import psycopg

TRANSIENT_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.ForeignKeyViolation,
)
# OperationalError subclasses that another attempt would only repeat.
PERMANENT_OPERATIONAL_ERRORS: tuple[type[Exception], ...] = (psycopg.errors.QueryCanceled,)

HINTS: dict[type[Exception], str] = {
    psycopg.errors.QueryCanceled: "the statement ran longer than statement_timeout "
    "(CUSTOMER_ANALYTICS_STATEMENT_TIMEOUT_SECONDS)",
    psycopg.errors.LockNotAvailable: "waited longer than lock_timeout (CUSTOMER_ANALYTICS_LOCK_TIMEOUT_SECONDS) "
    "for a lock",
    psycopg.errors.IdleInTransactionSessionTimeout: "the session sat idle inside its transaction longer than "
    "CUSTOMER_ANALYTICS_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS; the server ended it and rolled it back",
    psycopg.errors.InsufficientPrivilege:
        "the database role lacks a privilege: see docs/operations.md, Least privilege",
    psycopg.errors.UndefinedTable: "the database is not set up yet: run `customer-analytics migrate` on the "
    "application's database, or `customer-analytics demo` for a demo",
}


# Where lock_waits.LockWaitWatch leaves, on a LockNotAvailable, who held the lock.
_LOCK_HOLDERS = "customer_analytics_lock_holders"


def note_lock_holders(error: psycopg.errors.LockNotAvailable, holders: str) -> None:
    """Records on a lock timeout who held the lock (``describe`` says it)."""
    setattr(error, _LOCK_HOLDERS, holders)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_DATABASE_ERRORS) and not isinstance(error, PERMANENT_OPERATIONAL_ERRORS)


def describe(error: BaseException) -> str:
    """One line for a run's headline and for application_logs: the cause, a hint where
    one helps, and the SQLSTATE. PostgreSQL's DETAIL is left out: it can quote row values."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    hint = next((text for kind, text in HINTS.items() if isinstance(error, kind)), None)
    holders = getattr(error, _LOCK_HOLDERS, None)
    if holders:
        hint = f"{hint}: {holders}"
    if hint:
        message = f"{message} ({hint})"
    if isinstance(error, psycopg.Error) and error.diag.sqlstate:
        message = f"{message} [SQLSTATE {error.diag.sqlstate}]"
    return message
