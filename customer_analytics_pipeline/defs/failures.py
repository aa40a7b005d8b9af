"""How the assets fail: transient database errors are retried, everything else fails the
step at once with its cause in the headline (the error classes live in ``warehouse.errors``)."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, RetryPolicy

from customer_analytics_pipeline.warehouse.errors import describe, is_transient

# Retries only what is_transient lets through: everything else becomes a
# Failure(allow_retries=False) in database_failures_as_dagster_failures.
RETRY_ON_TRANSIENT_ERRORS = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL)


@contextmanager
def database_failures_as_dagster_failures(what: str) -> Iterator[None]:
    """Transient database errors propagate (the RetryPolicy retries them); any other
    error (bad input, bad data, a missing privilege, a timeout, a bug) fails the step at
    once, its cause in the headline."""
    try:
        yield
    except Failure:
        raise
    except Exception as error:
        if is_transient(error):
            raise
        raise Failure(description=f"{what} failed: {describe(error)}", allow_retries=False) from error


def will_retry(error: BaseException, retry_number: int) -> bool:
    """Whether the RetryPolicy will run the step again after ``error``."""
    return is_transient(error) and retry_number < RETRY_ON_TRANSIENT_ERRORS.max_retries
