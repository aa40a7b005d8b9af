"""The eight checks of SPEC section 4 without Dagster: what ``customer-analytics check``
runs, and what the two Dagster multi-asset checks report (one function each way, so the
command and the UI can never disagree)."""

from collections.abc import Sequence

import psycopg

from customer_analytics_pipeline.checks.customer_analytics_checks import (
    evaluate_customer_analytics_checks,
)
from customer_analytics_pipeline.checks.outcomes import (
    ERROR,
    CheckOutcome,
    Failures,
    find_failures,
)
from customer_analytics_pipeline.partitions import organization_keys
from customer_analytics_pipeline.views import VIEW_NAME

__all__ = ["VIEW_CHECK", "CheckOutcome", "Failures", "evaluate_checks", "evaluate_view_check"]

VIEW_CHECK = "appointments_view_available"


def evaluate_view_check(conn: psycopg.Connection, organization_ids: Sequence[str]) -> CheckOutcome:
    """Check 8: the view exists and answers (else the database error says why), and per
    organization its new_customers sum equals the customers with a first_booking_at."""
    return CheckOutcome(VIEW_CHECK, VIEW_NAME, ERROR, find_failures(conn, VIEW_CHECK, organization_ids))


def evaluate_checks(
    conn: psycopg.Connection, organization_ids: Sequence[str] | None = None, *, remember_segments: bool = False
) -> list[CheckOutcome]:
    """The eight checks for the organizations (None: every organization), in SPEC order.

    ``remember_segments`` is off by default: segment_distribution's WARN compares each
    organization's segment shares with the previous evaluation the scheduled runs saved.
    An ad-hoc evaluation that saved its own counts would move that baseline, and the next
    scheduled run would no longer see a shift that happened since the last one. So a
    command-line check compares with what the pipeline last saw and leaves it in place;
    the Dagster check saves.
    """
    organization_ids = list(organization_keys(conn) if organization_ids is None else organization_ids)
    return [
        *evaluate_customer_analytics_checks(conn, organization_ids, remember_segments=remember_segments),
        evaluate_view_check(conn, organization_ids),
    ]
