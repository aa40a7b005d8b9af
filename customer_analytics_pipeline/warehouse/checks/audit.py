"""The audit before publish (write-audit-publish): the ERROR checks evaluated on a
refresh's rows inside the refresh's own transaction, after they are written and before
it commits. An organization that fails its audit is rolled back by the refresh
(``warehouse/refresh.py``) and keeps its previous rows.

The audit is the same evaluation as ``customer-analytics check`` (``audit_outcomes``):
one definition of each check, recomputing from the source tables with SQL of its own.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from customer_analytics_pipeline.warehouse.checks.evaluation import audit_outcomes
from customer_analytics_pipeline.warehouse.checks.outcomes import EVERY_ROW, AuditScope, CheckOutcome

# How many failing customers an organization's failure line names per check.
CUSTOMERS_NAMED = 3


@dataclass(frozen=True)
class Audit:
    """The ERROR checks' outcomes on some organizations' refreshed rows, before commit."""

    organization_ids: tuple[str, ...]
    outcomes: tuple[CheckOutcome, ...]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(outcome.passed for outcome in self.outcomes)

    def rejected_organizations(self) -> list[str]:
        """The organizations with a failing row in some check, in order; every one when a
        check could not evaluate (nothing then vouches for any of them)."""
        if any(outcome.failures.error for outcome in self.outcomes):
            return list(self.organization_ids)
        failing = {org for outcome in self.outcomes for org in outcome.failures.rows_by_organization}
        return [org for org in self.organization_ids if org in failing]

    def of_organization(self, organization_id: str) -> "Audit":
        return Audit((organization_id,), tuple(o.of_organization(organization_id) for o in self.outcomes),
                     self.seconds)

    def problems(self) -> str:
        """Each failed check, its failing rows and the first failing customers' keys (ids
        only: never a personal value), e.g. ``avg_ticket_consistent: 2 row(s), customers
        C-1, C-7``."""
        parts = []
        for outcome in self.outcomes:
            failures = outcome.failures
            if failures.error:
                parts.append(f"{outcome.check_name} could not evaluate: {failures.error}")
            elif failures.rows_by_organization:
                customers = [str(s["square_customer_id"]) for s in failures.samples
                             if s.get("square_customer_id") is not None][:CUSTOMERS_NAMED]
                named = f", customers {', '.join(customers)}" if customers else ""
                parts.append(f"{outcome.check_name}: {failures.total} row(s){named}")
        return "; ".join(parts)

    @classmethod
    def combine(cls, audits: Sequence["Audit"]) -> "Audit | None":
        """One audit over organizations audited in transactions of their own."""
        if not audits:
            return None
        by_check = [[audit.outcomes[i] for audit in audits] for i in range(len(audits[0].outcomes))]
        return cls(
            tuple(org for audit in audits for org in audit.organization_ids),
            tuple(CheckOutcome.combine(parts) for parts in by_check),
            sum(audit.seconds for audit in audits),
        )


def audit_organizations(
    conn: psycopg.Connection, organization_ids: Sequence[str], scope: AuditScope = EVERY_ROW
) -> Audit:
    """The ERROR checks on the organizations' rows of ``scope`` as the caller's
    transaction sees them (each check in a savepoint of its own, so one that cannot
    evaluate fails alone)."""
    started = time.perf_counter()
    outcomes = audit_outcomes(conn, list(organization_ids), scope)
    return Audit(tuple(organization_ids), tuple(outcomes), time.perf_counter() - started)
