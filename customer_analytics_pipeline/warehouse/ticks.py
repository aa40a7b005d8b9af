"""What a tick refreshes: the hourly selection of the organizations that need `recent`
(the others proven current and recorded as verified), every organization's size, and
batches of about the same number of customers.

The schedules (Dagster layer) and ``customer-analytics refresh`` (operator layer) both
call these, so an operator's ``refresh --mode recent`` selects what the tick selects.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import psycopg

from customer_analytics_pipeline.warehouse.refresh import FINGERPRINT_SEED, RefreshParameters
from customer_analytics_pipeline.warehouse.sql_files import load_sql

SELECT_DUE_SQL = "ticks/select_organizations_due.sql"
COUNT_CLIENTS_SQL = "ticks/count_clients.sql"
STALE_ORGANIZATIONS_SQL = "ticks/stale_organizations.sql"


@dataclass(frozen=True)
class OrganizationSize:
    """An organization and its client count (what a run's size is measured in)."""

    organization_id: str
    customers: int


Sized = TypeVar("Sized", bound=OrganizationSize)


@dataclass(frozen=True)
class OrganizationDue(OrganizationSize):
    """An organization the tick refreshes, and why (never an empty reason)."""

    reason: str


@dataclass(frozen=True)
class TickSelection:
    """The hourly tick's decision over a list of organizations."""

    due: tuple[OrganizationDue, ...]
    verified: int  # proven current and recorded as verified at the tick
    unknown: tuple[str, ...]  # listed, but without an organizations row

    def reasons(self) -> dict[str, int]:
        """How many organizations are due for each reason."""
        counts: dict[str, int] = {}
        for organization in self.due:
            counts[organization.reason] = counts.get(organization.reason, 0) + 1
        return dict(sorted(counts.items()))


def select_organizations_due(
    conn: psycopg.Connection, organization_ids: Sequence[str], parameters: RefreshParameters
) -> TickSelection:
    """Which of ``organization_ids`` a `recent` refresh at ``parameters.as_of`` would
    change (source rows changed, a segment boundary passed, other day counts, no proof
    yet), in their given order; the rest are recorded as verified in the same statement."""
    rows = conn.execute(
        load_sql(SELECT_DUE_SQL),
        {
            "organization_ids": list(organization_ids),
            "seed": FINGERPRINT_SEED,
            "as_of": parameters.as_of,
            "new_days": parameters.new_days,
            "active_days": parameters.active_days,
            "at_risk_days": parameters.at_risk_days,
        },
    ).fetchall()
    decided = {organization_id: (customers, reason) for organization_id, customers, reason in rows}
    due = tuple(
        OrganizationDue(key, decided[key][0], decided[key][1])
        for key in organization_ids
        if key in decided and decided[key][1] is not None
    )
    return TickSelection(
        due=due,
        verified=sum(1 for _, reason in decided.values() if reason is None),
        unknown=tuple(key for key in organization_ids if key not in decided),
    )


def organization_sizes(conn: psycopg.Connection, organization_ids: Sequence[str]) -> list[OrganizationSize]:
    """The client count of each of ``organization_ids`` that exists, in their given order."""
    counts = dict(conn.execute(load_sql(COUNT_CLIENTS_SQL), {"organization_ids": list(organization_ids)}).fetchall())
    return [OrganizationSize(key, counts[key]) for key in organization_ids if key in counts]


def balanced_batches(organizations: Sequence[Sized], customers_per_run: int) -> list[list[Sized]]:
    """Consecutive groups of ``organizations`` (order kept) of at most ``customers_per_run``
    customers each, an organization with no clients counting as one; an organization
    larger than that is a group of its own."""
    if customers_per_run < 1:
        raise ValueError(f"customers_per_run must be at least 1, got {customers_per_run}")
    batches: list[list[Sized]] = []
    current: list[Sized] = []
    size = 0
    for organization in organizations:
        weight = max(1, organization.customers)
        if current and size + weight > customers_per_run:
            batches.append(current)
            current, size = [], 0
        current.append(organization)
        size += weight
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class StaleOrganization:
    """An organization whose rows no refresh or tick has proven current within the window."""

    organization_id: str
    name: str
    current_at: datetime | None  # when they last were (None: never)


def stale_organizations(conn: psycopg.Connection, window: timedelta) -> list[StaleOrganization]:
    """Organizations neither refreshed nor verified within ``window`` of now, the longest
    stale first (an organization newer than the window is not stale yet)."""
    rows = conn.execute(load_sql(STALE_ORGANIZATIONS_SQL), {"window": window}).fetchall()
    return [StaleOrganization(*row) for row in rows]
