"""How the assets fail: transient database errors are retried, everything else fails the
step at once with its cause in the headline (the error classes live in ``warehouse.errors``)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster import Backoff, Failure, RetryPolicy

from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse import batch_refresh
from customer_analytics_pipeline.warehouse.errors import describe, is_transient

# Retries only what is_transient lets through: everything else becomes a
# Failure(allow_retries=False) in database_failures_as_dagster_failures.
RETRY_ON_TRANSIENT_ERRORS = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL)


@contextmanager
def database_failures_as_dagster_failures(what: str, retry_number: int) -> Iterator[None]:
    """Transient database errors the RetryPolicy will retry propagate; any other error
    (bad input, bad data, a missing privilege, a timeout, a bug), and a transient one on
    the last attempt, fails the step at once with its cause described in the headline
    (a lock timeout naming who held the lock, say)."""
    try:
        yield
    except Failure:
        raise
    except Exception as error:
        if will_retry(error, retry_number):
            raise
        raise Failure(description=f"{what} failed: {describe(error)}", allow_retries=False) from error


def will_retry(error: BaseException, retry_number: int) -> bool:
    """Whether the RetryPolicy will run the step again after ``error``."""
    return is_transient(error) and retry_number < RETRY_ON_TRANSIENT_ERRORS.max_retries


def record_failure_on_own_connection(
    database: PostgresResource, run_id: str, cause: str, mode: str | None, organization_ids: Sequence[str],
    committed_organization_ids: Sequence[str] = (),
) -> str | None:
    """``batch_refresh.record_failure_on_own_connection`` on ``database``: None when
    written, else why it could not be."""
    return batch_refresh.record_failure_on_own_connection(
        database.connect, run_id, cause, mode, organization_ids, committed_organization_ids
    )
