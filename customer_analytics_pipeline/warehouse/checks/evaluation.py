"""The eight checks of docs/contract.md, The eight checks, evaluated without Dagster: what
``customer-analytics check`` runs, and what the two Dagster multi-asset checks report
(one evaluation both ways, so the command and the UI can never disagree).

Each check's failing-rows SQL is in ``sql/checks/`` (see its README); checks 5 to 7
recompute from the source tables with SQL of their own, never the refresh's.
"""

import json
from collections.abc import Sequence
from fractions import Fraction

import psycopg

from customer_analytics_pipeline.warehouse.checks.masking import mask_personal_fields
from customer_analytics_pipeline.warehouse.checks.outcomes import (
    ERROR,
    EVERY_ROW,
    MAX_SAMPLES,
    WARN,
    AuditScope,
    CheckOutcome,
    Failures,
    attempt,
    copy_audited_rows,
    failures_or_error,
    find_failures,
)
from customer_analytics_pipeline.warehouse.organizations import organization_keys
from customer_analytics_pipeline.warehouse.schema import (
    CUSTOMER_ANALYTICS_COLUMNS,
    CUSTOMER_ANALYTICS_KEY,
    CUSTOMER_ANALYTICS_TABLE,
    CUSTOMER_SEGMENTS,
)
from customer_analytics_pipeline.warehouse.sql_files import load_sql

VIEW_CHECK = "appointments_view_available"
# Not one of the eight: whether every organization was refreshed or verified by a tick
# within the freshness window (warehouse/ticks.py, stale_organizations).
FRESHNESS_CHECK = "refreshed_or_verified_recently"
# Every check of docs/contract.md, The eight checks on customer_analytics, in order, with what it guards.
CUSTOMER_ANALYTICS_CHECKS = {
    "table_exists": "customer_analytics exists with every column of docs/contract.md, customer_analytics and its key.",
    "row_count_matches_clients": "One row per client of the organization, no more, no less.",
    "sample_record_valid": "Counts >= 0, first_booking_at <= last_booking_at, accepted bookings iff a first booking.",
    "segment_distribution": (
        "ERROR: a segment NULL or unknown. WARN: a segment's share moved > 20 points since last time."
    ),
    "avg_ticket_consistent": "avg_ticket_cents recomputed from payments agrees on every row.",
    "first_booking_at_matches_source": "The first accepted booking recomputed from bookings agrees.",
    "referral_data_valid": "Referral columns agree with referral_profiles.",
}
VIEW_CHECK_DESCRIPTION = (
    "The view exists, answers, and its new_customers sum per organization equals the customers with a first_booking_at."
)
# A segment's share of an organization moving more than this between two evaluations
# is worth a warning (20 percentage points: docs/contract.md, The eight checks).
SEGMENT_SHIFT_WARNING = Fraction(20, 100)
SAMPLE_ROW_NOTES = 3

# The checks audited inside the refresh's transaction, before it commits: every ERROR
# check of the eight (of segment_distribution, its NULL or unknown segment).
AUDIT_CHECKS = tuple(CUSTOMER_ANALYTICS_CHECKS)
# The checks that select failing rows, and their SQL.
ROW_CHECKS = {
    "row_count_matches_clients": "checks/row_count_matches_clients.sql",
    "sample_record_valid": "checks/sample_record_valid.sql",
    "avg_ticket_consistent": "checks/avg_ticket_consistent.sql",
    "first_booking_at_matches_source": "checks/first_booking_at_matches_source.sql",
    "referral_data_valid": "checks/referral_data_valid.sql",
}
UNKNOWN_SEGMENTS_SQL = "checks/segment_distribution.sql"
VIEW_CHECK_SQL = "checks/appointments_view_available.sql"


def table_structure_failures(conn: psycopg.Connection) -> Failures:
    """Missing table, missing columns or a wrong primary key."""
    columns = {row[0] for row in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (CUSTOMER_ANALYTICS_TABLE,),
    )}
    key = [row[0] for row in conn.execute(
        "SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY k.n",
        (CUSTOMER_ANALYTICS_TABLE,),
    )]
    problems = []
    if not columns:
        problems.append("table customer_analytics does not exist")
    else:
        problems += [f"column {name} is missing" for name in CUSTOMER_ANALYTICS_COLUMNS if name not in columns]
        if tuple(key) != CUSTOMER_ANALYTICS_KEY:
            problems.append(f"primary key is {tuple(key) or 'missing'}, expected {CUSTOMER_ANALYTICS_KEY}")
    return Failures(error="; ".join(problems) or None)


def segment_shifts(current: dict[str, dict[str, int]], previous: dict[str, dict[str, int]]) -> dict:
    """Per organization whose some segment's share moved more than 20 points between the
    two evaluations: every segment's share change (rounded for display only)."""
    shifts = {}
    for organization_id, counts in current.items():
        before = previous.get(organization_id) or {}
        total_now, total_before = sum(counts.values()), sum(before.values())
        if not total_now or not total_before:
            continue
        moved = {
            segment: Fraction(counts.get(segment, 0), total_now) - Fraction(before.get(segment, 0), total_before)
            for segment in sorted(set(counts) | set(before))
        }
        # Exact fractions: a shift of 20.004 points must not round down to 20.
        if any(abs(share) > SEGMENT_SHIFT_WARNING for share in moved.values()):
            shifts[organization_id] = {segment: round(float(share), 4) for segment, share in moved.items()}
    return shifts


def segment_counts(conn: psycopg.Connection, organization_ids: list[str], remember: bool) -> tuple[dict, dict]:
    """(current counts, counts at the previous evaluation) per organization; with
    ``remember``, the current counts become the previous ones of the next evaluation."""
    params = {"organization_ids": organization_ids}
    current: dict[str, dict[str, int]] = {}
    for organization_id, segment, customers in conn.execute(load_sql("checks/segment_shares.sql"), params):
        current.setdefault(organization_id, {})[segment] = customers
    previous = dict(conn.execute(load_sql("checks/previous_segment_snapshots.sql"), params).fetchall())
    if remember:
        conn.execute(load_sql("checks/save_segment_snapshots.sql"), {**params, "segment_counts": json.dumps(current)})
    return current, previous


def segment_shift_outcome(conn: psycopg.Connection, organization_ids: list[str], remember: bool) -> CheckOutcome:
    """segment_distribution's WARN: a sharp shift of the segment shares since the previous
    evaluation (a failure to compare is a WARN too: it says nothing about the segments)."""
    counts, error = attempt(conn, lambda: segment_counts(conn, organization_ids, remember))
    if error:
        failed = Failures(error=f"segment shift not evaluated: {error}")
        return CheckOutcome("segment_distribution", CUSTOMER_ANALYTICS_TABLE, WARN, failed)
    current, previous = counts
    shifts = segment_shifts(current, previous)
    shifted = Failures(
        rows_by_organization={org: sum(current[org].values()) for org in shifts},
        samples=[{"organization_id": org, "problem": f"segment shares moved {moved}"}
                 for org, moved in list(shifts.items())[:MAX_SAMPLES]],
    )
    distribution = {segment: sum(c.get(segment, 0) for c in current.values()) for segment in CUSTOMER_SEGMENTS}
    return CheckOutcome("segment_distribution", CUSTOMER_ANALYTICS_TABLE, WARN, shifted, {"distribution": distribution})


def segment_distribution_outcome(
    unknown_segments: CheckOutcome, conn: psycopg.Connection, organization_ids: list[str], remember: bool
) -> CheckOutcome:
    """The whole check 4: its ERROR when a segment is NULL or unknown, else its WARN rule."""
    if not unknown_segments.passed:
        return unknown_segments
    return segment_shift_outcome(conn, organization_ids, remember)


def masked_sample_row(conn: psycopg.Connection, organization_ids: list[str], failures: Failures) -> dict:
    """One row, the first failing one when there is one, to show what rows look like:
    its known columns only (a column added later is not shown unvetted), masked."""
    first = failures.samples[0] if failures.samples else {}
    params = {
        "organization_ids": organization_ids, "notes": SAMPLE_ROW_NOTES,
        "organization_id": first.get("organization_id"), "square_customer_id": first.get("square_customer_id"),
    }
    record, error = attempt(conn, lambda: conn.execute(load_sql("checks/sample_row.sql"), params).fetchone())
    if error:
        return {"unavailable": error}
    row = record[0] if record else {}
    shown = (*CUSTOMER_ANALYTICS_COLUMNS, "booking_notes_count")
    return mask_personal_fields({name: row[name] for name in shown if name in row})


def audit_outcomes(
    conn: psycopg.Connection, organization_ids: list[str], scope: AuditScope = EVERY_ROW
) -> list[CheckOutcome]:
    """The ERROR checks (1-7; of check 4 its NULL or unknown segment, placed last) on the
    rows of ``scope``: what the refresh audits inside its transaction before it commits
    (what it wrote and a sample of the rest), and what ``customer-analytics check``
    evaluates (every row). A check that cannot evaluate (say, a column it reads is gone)
    fails on its own with the database error; when the rows cannot even be copied (the
    table is gone), every check of them fails with that error.

    The rows are copied once into audited_rows, inside a transaction (a savepoint in the
    refresh's) that ends with them. Outside a refresh that transaction is REPEATABLE
    READ: the copy and every check then see one snapshot, so a refresh committing in
    between cannot make the copy disagree with the source rows the checks read."""
    outcomes = [CheckOutcome("table_exists", CUSTOMER_ANALYTICS_TABLE, ERROR,
                             failures_or_error(conn, lambda: table_structure_failures(conn)))]
    in_refresh = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    with conn.transaction():
        if not in_refresh:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _, copy_error = attempt(conn, lambda: copy_audited_rows(conn, organization_ids, scope))

        def audited_failures(sql_file: str, **params: object) -> Failures:
            if copy_error:
                return Failures(error=copy_error)
            return find_failures(conn, sql_file, organization_ids, every_row=scope.every_row, **params)

        for name, sql_file in ROW_CHECKS.items():
            failures = audited_failures(sql_file)
            details = {}
            if name == "sample_record_valid" and not failures.error:
                details = {"sample_row": masked_sample_row(conn, organization_ids, failures)}
            outcomes.append(CheckOutcome(name, CUSTOMER_ANALYTICS_TABLE, ERROR, failures, details))
        # segment_distribution's ERROR rule: a NULL or unknown segment.
        unknown_segments = audited_failures(UNKNOWN_SEGMENTS_SQL, segments=list(CUSTOMER_SEGMENTS))
        outcomes.append(CheckOutcome("segment_distribution", CUSTOMER_ANALYTICS_TABLE, ERROR, unknown_segments))
        conn.execute("DROP TABLE IF EXISTS audited_rows")
    return outcomes


def evaluate_customer_analytics_checks(
    conn: psycopg.Connection, organization_ids: list[str], *, remember_segments: bool
) -> list[CheckOutcome]:
    """Checks 1-7 for the organizations, in order: the audit's checks, check 4 completed
    with its WARN rule when no segment is NULL or unknown."""
    outcomes = audit_outcomes(conn, organization_ids)
    return [segment_distribution_outcome(o, conn, organization_ids, remember_segments)
            if o.check_name == "segment_distribution" else o for o in outcomes]


def checks_after_publish(conn: psycopg.Connection, organization_ids: list[str]) -> list[CheckOutcome]:
    """What the refresh step evaluates after its commit, on the organizations that
    committed: check 4's WARN rule (the segment baseline saved for the next run) and
    check 8, the view; neither can roll a refresh back."""
    return [segment_shift_outcome(conn, organization_ids, remember=True), evaluate_view_check(conn, organization_ids)]


def evaluate_view_check(conn: psycopg.Connection, organization_ids: Sequence[str]) -> CheckOutcome:
    """Check 8: the view exists and answers (else the database error says why), and per
    organization its new_customers sum equals the customers with a first_booking_at."""
    return CheckOutcome(VIEW_CHECK, CUSTOMER_ANALYTICS_TABLE, ERROR,
                        find_failures(conn, VIEW_CHECK_SQL, organization_ids))


def evaluate_checks(
    conn: psycopg.Connection, organization_ids: Sequence[str] | None = None, *, remember_segments: bool = False
) -> list[CheckOutcome]:
    """The eight checks for the organizations (None: every organization), in the contract's order.

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
