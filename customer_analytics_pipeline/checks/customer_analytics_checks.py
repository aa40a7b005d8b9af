"""Checks 1 to 7 of SPEC section 4 on ``customer_analytics``, for the organizations a run refreshed.

One unpartitioned multi-asset check (the stable route in Dagster 1.13; partitioned
checks are a preview API) that reads the run's partitions from its tags and names the
failing organizations in its metadata. Correctness checks are blocking with ERROR
severity: a failure fails the run and the view is not recreated in it.
"""

import json
from fractions import Fraction

import psycopg
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from customer_analytics_pipeline.checks.evaluation import Failures, check_result, find_failures
from customer_analytics_pipeline.checks.masking import mask_contacts
from customer_analytics_pipeline.partitions import organizations_to_check
from customer_analytics_pipeline.resources import PostgresResource
from customer_analytics_pipeline.sql_files import load_sql
from customer_analytics_pipeline.table_schema import (
    CUSTOMER_ANALYTICS_COLUMNS,
    CUSTOMER_ANALYTICS_KEY,
    CUSTOMER_ANALYTICS_TABLE,
    CUSTOMER_SEGMENTS,
)

CUSTOMER_ANALYTICS = AssetKey(CUSTOMER_ANALYTICS_TABLE)

# A segment's share of an organization moving more than this between two evaluations
# is worth a warning (SPEC section 4: 20 percentage points).
SEGMENT_SHIFT_WARNING = Fraction(20, 100)

CHECK_DESCRIPTIONS = {
    "table_exists": "customer_analytics exists with every column of SPEC section 2 and its key.",
    "row_count_matches_clients": "One row per client of the organization, no more, no less.",
    "sample_record_valid": "Counts >= 0, first_booking_at <= last_booking_at, accepted bookings iff a first booking.",
    "segment_distribution": "ERROR: a segment NULL or unknown. WARN: a segment's share moved > 20 points since last time.",
    "avg_ticket_consistent": "avg_ticket_cents recomputed from payments agrees on every row.",
    "first_booking_at_matches_source": "The first accepted booking recomputed from bookings agrees.",
    "referral_data_valid": "Referral columns agree with referral_profiles.",
}
ROW_CHECKS = ("row_count_matches_clients", "sample_record_valid", "avg_ticket_consistent",
              "first_booking_at_matches_source", "referral_data_valid")


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


def segment_shift_warnings(conn: psycopg.Connection, organization_ids: list[str]) -> tuple[dict, dict]:
    """(current counts, shifts over the threshold) per organization; remembers the current
    counts for the next evaluation."""
    params = {"organization_ids": organization_ids}
    current: dict[str, dict[str, int]] = {}
    for organization_id, segment, customers in conn.execute(load_sql("checks/segment_shares.sql"), params):
        current.setdefault(organization_id, {})[segment] = customers
    previous = dict(conn.execute(load_sql("checks/previous_segment_snapshots.sql"), params).fetchall())
    conn.execute(
        load_sql("checks/save_segment_snapshots.sql"),
        {**params, "segment_counts": json.dumps(current)},
    )
    return current, segment_shifts(current, previous)


def segment_distribution_result(context, conn, organization_ids: list[str]) -> AssetCheckResult:
    """ERROR for NULL/unknown segments; otherwise WARN on a sharp shift since last time."""
    invalid = find_failures(conn, "segment_distribution", organization_ids)
    if invalid.failed:
        return check_result(CUSTOMER_ANALYTICS, "segment_distribution", invalid, len(organization_ids), context.log)
    try:
        current, shifts = segment_shift_warnings(conn, organization_ids)
    except psycopg.Error as error:
        # The segments themselves were valid; only the shift comparison is unavailable.
        failed = Failures(error=f"segment shift not evaluated: {type(error).__name__}: {error}".strip())
        return check_result(CUSTOMER_ANALYTICS, "segment_distribution", failed, len(organization_ids), context.log,
                            severity=AssetCheckSeverity.WARN)
    distribution = {segment: sum(c.get(segment, 0) for c in current.values()) for segment in CUSTOMER_SEGMENTS}
    shifted = Failures(rows_by_organization={org: sum(current[org].values()) for org in shifts},
                       samples=[{"organization_id": org, "problem": f"segment shares moved {moved}"}
                                for org, moved in list(shifts.items())[:10]])
    return check_result(
        CUSTOMER_ANALYTICS, "segment_distribution", shifted, len(organization_ids), context.log,
        severity=AssetCheckSeverity.WARN,
        extra_metadata={"distribution": MetadataValue.json(distribution)},
    )


def masked_sample_row(conn: psycopg.Connection, organization_ids: list[str]) -> dict:
    """One row of the checked organizations, contacts masked, to show what rows look like."""
    cursor = conn.execute(
        "SELECT * FROM customer_analytics WHERE organization_id = ANY(%s::uuid[])"
        " ORDER BY organization_id, square_customer_id LIMIT 1",
        (organization_ids,),
    )
    row = cursor.fetchone()
    return mask_contacts(dict(zip([c.name for c in cursor.description], row))) if row else {}


@multi_asset_check(
    specs=[
        AssetCheckSpec(name, asset=CUSTOMER_ANALYTICS, blocking=True, description=description)
        for name, description in CHECK_DESCRIPTIONS.items()
    ],
)
def customer_analytics_checks(context: AssetCheckExecutionContext, database: PostgresResource):
    """Evaluates checks 1-7 for the organizations of the run (every organization when the
    run is not partitioned, e.g. checks launched on their own)."""
    with database.connect() as conn:
        organization_ids = organizations_to_check(context.instance, context.run.tags, conn)
        checked = len(organization_ids)
        yield check_result(CUSTOMER_ANALYTICS, "table_exists", table_structure_failures(conn), checked, context.log)
        # Each check that cannot evaluate (say, a column it reads is gone) fails on its own.
        for name in ROW_CHECKS:
            failures = find_failures(conn, name, organization_ids)
            extra = None
            if name == "sample_record_valid" and not failures.error:
                extra = {"sample_row": MetadataValue.json(masked_sample_row(conn, organization_ids))}
            yield check_result(CUSTOMER_ANALYTICS, name, failures, checked, context.log, extra_metadata=extra)
        yield segment_distribution_result(context, conn, organization_ids)
