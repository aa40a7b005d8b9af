"""customer_segment_changes (docs/contract.md, Segment movements): every refresh logs each segment it changes,
in its own transaction; the weekly view and retention read and trim that log."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from customer_analytics_pipeline.warehouse.refresh import (
    OrganizationsFailed,
    RefreshParameters,
    refresh_customer_analytics,
)
from customer_analytics_pipeline.warehouse.segment_history import delete_expired_segment_changes
from customer_analytics_pipeline_tests.helpers import anchor, largest_organization, organization_ids, refresh
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)

Key = tuple[str, str]


def segments(conn: psycopg.Connection) -> dict[Key, str]:
    rows = conn.execute("SELECT organization_id::text, square_customer_id, customer_segment FROM customer_analytics")
    return {(org, customer): segment for org, customer, segment in rows}


def change_log(conn: psycopg.Connection) -> dict[Key, list[tuple]]:
    """Each customer's change rows in changed_at order: (from, to, as_of)."""
    log: dict[Key, list[tuple]] = {}
    for org, customer, from_segment, to_segment, as_of in conn.execute(
        "SELECT organization_id::text, square_customer_id, from_segment, to_segment, as_of"
        " FROM customer_segment_changes ORDER BY changed_at"
    ):
        log.setdefault((org, customer), []).append((from_segment, to_segment, as_of))
    return log


def change_row_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM customer_segment_changes").fetchone()[0]


def expected_log(history: list[tuple[datetime, dict[Key, str]]]) -> dict[Key, list[tuple]]:
    """The segment sequence each customer's row held after each refresh, as changes."""
    log: dict[Key, list[tuple]] = {}
    current: dict[Key, str] = {}
    for as_of, snapshot in history:
        for key, segment in snapshot.items():
            if current.get(key) != segment:
                log.setdefault(key, []).append((current.get(key), segment, as_of))
                current[key] = segment
    return log


def add_client_with_booking(conn: psycopg.Connection, organization: str, customer: str, start_at: datetime) -> None:
    conn.execute(
        "INSERT INTO square_existing_clients (organization_id, square_customer_id, created_at, updated_at)"
        " VALUES (%(org)s, %(customer)s, %(at)s, %(at)s)", {"org": organization, "customer": customer, "at": start_at},
    )
    add_booking(conn, organization, customer, start_at)


def add_booking(conn: psycopg.Connection, organization: str, customer: str, start_at: datetime) -> None:
    location = conn.execute(
        "SELECT square_location_id FROM locations WHERE organization_id = %s ORDER BY 1 LIMIT 1", (organization,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
        " created_at, updated_at) VALUES (%(org)s, %(id)s, %(customer)s, %(location)s, 'ACCEPTED', %(at)s,"
        " %(at)s, %(at)s)",
        {"org": organization, "id": f"seg-test-{customer}-{start_at:%Y%m%d%H}", "customer": customer,
         "location": location, "at": start_at},
    )


def test_change_rows_are_the_segments_each_refresh_left(generated):
    """Full, a later full, a recent after source changes (new client, new booking, a
    deleted client), a recent whose segment-only pass moves many, a full a year on."""
    conn, history = generated, []
    organization = largest_organization(conn)

    def step(mode: str, as_of: datetime) -> None:
        refresh(conn, mode, as_of)
        history.append((as_of, segments(conn)))

    step("full", anchor())
    step("full", anchor() + timedelta(days=60))
    returning = conn.execute(
        "SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s AND customer_segment = 'LOST'"
        " AND first_booking_at IS NOT NULL ORDER BY 1 LIMIT 1", (organization,),
    ).fetchone()[0]
    deleted = conn.execute(
        "SELECT square_customer_id FROM customer_analytics WHERE organization_id = %s AND customer_segment <> 'LOST'"
        " ORDER BY 1 LIMIT 1", (organization,),
    ).fetchone()[0]
    recent_as_of = anchor() + timedelta(days=61)
    add_client_with_booking(conn, organization, "seg-test-new", recent_as_of - timedelta(days=1))
    add_booking(conn, organization, returning, recent_as_of - timedelta(days=2))
    conn.execute("DELETE FROM square_existing_clients WHERE organization_id = %s AND square_customer_id = %s",
                 (organization, deleted))
    step("recent", recent_as_of)
    step("recent", anchor() + timedelta(days=150))
    step("full", anchor() + timedelta(days=500))

    log = change_log(conn)
    expected = expected_log(history)
    del expected[organization, deleted]  # the client's change rows went with it
    assert log == expected
    assert [change[1] for change in log[organization, "seg-test-new"]] == ["NEW", "ACTIVE", "LOST"]
    assert ("LOST", "ACTIVE", recent_as_of) in log[organization, returning]
    assert sum(len(changes) for changes in log.values()) > 1.5 * len(segments(conn))  # many moves, not just firsts
    final_as_of = history[-1][0]
    assert_frames_equal_cellwise(
        read_customer_analytics(conn), expected_customer_analytics(load_source_frames(conn), final_as_of)
    )


@pytest.mark.parametrize("mode", ["full", "recent"])
def test_a_refresh_that_moves_nobody_writes_no_change_rows(refreshed, mode):
    before = change_row_count(refreshed)
    assert before == len(segments(refreshed))  # every customer's first segment
    result = refresh(refreshed, mode, anchor())
    assert change_row_count(refreshed) == before
    assert result.segment_movements == ()


def test_the_result_counts_the_runs_movements(refreshed):
    later = anchor() + timedelta(days=120)
    before = segments(refreshed)
    result = refresh(refreshed, "recent", later)
    after = segments(refreshed)
    moved = pd.Series([(before[key], after[key]) for key in after if before.get(key) != after[key]]).value_counts()
    assert {(m.from_segment, m.to_segment): m.customers for m in result.segment_movements} == moved.to_dict()
    assert result.customers_moved_into("LOST") == sum(n for (_, to), n in moved.items() if to == "LOST")
    assert result.customers_moved_into("LOST") > 0


def test_a_rolled_back_batch_leaves_no_change_rows(generated):
    def fail_before_commit(conn, result):
        assert result.segment_movements  # the rows were written inside the transaction
        raise RuntimeError("the run-history write failed")

    with pytest.raises(RuntimeError):
        refresh_customer_analytics(generated, organization_ids(generated), RefreshParameters(as_of=anchor()),
                                   before_commit=fail_before_commit)
    assert change_row_count(generated) == 0


def test_an_organization_failing_on_bad_data_logs_no_changes_and_the_others_do(generated):
    broken = largest_organization(generated)
    generated.execute(
        "UPDATE payments SET amount_cents = 9223372036854775807 WHERE organization_id = %s AND status = 'COMPLETED'",
        (broken,),
    )
    with pytest.raises(OrganizationsFailed, match="bad data") as failed:
        refresh(generated, "full", anchor())
    # The organizations refreshed one by one report their movements together.
    assert failed.value.refreshed.segment_changes == change_row_count(generated) > 0
    per_organization = dict(generated.execute(
        "SELECT organization_id::text, count(*) FROM customer_segment_changes GROUP BY 1").fetchall())
    assert broken not in per_organization
    assert set(per_organization) == {o for o in organization_ids(generated) if o != broken} & set(
        dict(generated.execute("SELECT organization_id::text, 1 FROM square_existing_clients GROUP BY 1").fetchall())
    )


def insert_history(conn: psycopg.Connection, rows: list[tuple]) -> None:
    with conn.cursor().copy(
        "COPY customer_segment_changes (organization_id, square_customer_id, from_segment, to_segment, as_of,"
        " changed_at) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def synthetic_history(conn: psycopg.Connection, days_back: list[int]) -> list[tuple]:
    """Change rows of real customers spread over past weeks (a refresh only writes now())."""
    customers = conn.execute(
        "SELECT organization_id::text, square_customer_id FROM square_existing_clients ORDER BY 1, 2"
    ).fetchall()
    moves = [("ACTIVE", "AT_RISK"), ("AT_RISK", "LOST"), ("LOST", "ACTIVE"), ("NEW", "ACTIVE")]
    now = datetime.now(UTC)
    rows = []
    for i, (org, customer) in enumerate(customers):
        for j, days in enumerate(days_back):
            # Sunday 23:59 and Monday 00:01 UTC both occur: the week boundary is exercised.
            changed_at = now - timedelta(days=days + (i % 9), minutes=(i * 37 + j) % 2000)
            from_segment, to_segment = moves[(i + j) % len(moves)]
            rows.append((org, customer, from_segment, to_segment, changed_at, changed_at))
    return rows


def change_frame(conn: psycopg.Connection) -> pd.DataFrame:
    """Every change row, with ``changed_at_utc`` as a naive UTC timestamp."""
    columns = ["organization_id", "square_customer_id", "from_segment", "to_segment", "changed_at"]
    changes = pd.DataFrame(
        conn.execute(
            "SELECT organization_id::text, square_customer_id, from_segment, to_segment, changed_at"
            " FROM customer_segment_changes"
        ).fetchall(),
        columns=columns,
    )
    changes["changed_at_utc"] = pd.to_datetime(changes["changed_at"], utc=True).dt.tz_localize(None)
    return changes


def test_the_weekly_view_equals_a_recomputation_from_the_change_rows(refreshed):
    insert_history(refreshed, synthetic_history(refreshed, [3, 10, 11, 40, 41, 300]))
    changes = change_frame(refreshed)
    utc = changes["changed_at_utc"]
    changes["week"] = (utc.dt.normalize() - pd.to_timedelta(utc.dt.day_of_week, unit="D")).dt.date
    expected = (
        changes.fillna({"from_segment": "<none>"})
        .groupby(["organization_id", "week", "from_segment", "to_segment"])["square_customer_id"]
        .nunique().rename("customers").reset_index()
    )
    view = pd.DataFrame(
        refreshed.execute(
            "SELECT organization_id::text, week, coalesce(from_segment, '<none>'), to_segment, customers"
            " FROM analytics_segment_movements_weekly"
        ).fetchall(),
        columns=["organization_id", "week", "from_segment", "to_segment", "customers"],
    )
    order = ["organization_id", "week", "from_segment", "to_segment"]
    assert len(expected) > len(organization_ids(refreshed)) * 5
    pd.testing.assert_frame_equal(
        view.sort_values(order).reset_index(drop=True), expected.sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )


def test_an_organization_filter_on_the_weekly_view_reaches_the_index(refreshed):
    refreshed.execute("SET enable_seqscan = off")
    plan = "\n".join(row[0] for row in refreshed.execute(
        "EXPLAIN SELECT * FROM analytics_segment_movements_weekly WHERE organization_id = %s",
        (largest_organization(refreshed),),
    ))
    assert "customer_segment_changes" in plan
    assert "Index Cond: (organization_id = " in plan, plan


def test_retention_deletes_only_old_rows_of_the_batch_in_small_batches(refreshed):
    insert_history(refreshed, synthetic_history(refreshed, [100, 800, 900]))
    organizations = organization_ids(refreshed)
    batch, others = organizations[:2], organizations[2:]
    count_sql = ("SELECT count(*) FROM customer_segment_changes WHERE organization_id = ANY(%s::uuid[])"
                 " AND changed_at < now() - interval '730 days'")
    old_in_batch = refreshed.execute(count_sql, (batch,)).fetchone()[0]
    old_elsewhere = refreshed.execute(count_sql, (others,)).fetchone()[0]
    total = change_row_count(refreshed)
    assert old_in_batch > 7 and old_elsewhere > 0

    deleted = delete_expired_segment_changes(refreshed, batch, keep_days=730, batch_size=7)

    assert deleted == old_in_batch
    assert refreshed.execute(count_sql, (batch,)).fetchone()[0] == 0
    assert refreshed.execute(count_sql, (others,)).fetchone()[0] == old_elsewhere
    assert change_row_count(refreshed) == total - deleted
    assert delete_expired_segment_changes(refreshed, batch, keep_days=730) == 0


def documented_segment_queries() -> list[str]:
    """The example queries of docs/contract.md's "Segment movements" section, in order."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text(encoding="utf-8")
    section = text.split("## Segment movements", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0].strip().rstrip(";") for block in section.split("```sql")[1:]]


def test_the_documented_example_queries_answer_what_they_say(refreshed):
    insert_history(refreshed, synthetic_history(refreshed, [0, 1, 2, 9, 40, 70]))
    this_week, lost_per_month = documented_segment_queries()
    changes = change_frame(refreshed)
    utc = changes["changed_at_utc"]
    now = pd.Timestamp(refreshed.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()[0])
    monday = now.normalize() - pd.Timedelta(days=now.weekday())
    organization = largest_organization(refreshed)

    found = refreshed.execute(this_week, {"organization_id": organization}).fetchall()
    expected = changes[(changes.organization_id == organization) & (changes.from_segment == "ACTIVE")
                       & (changes.to_segment == "AT_RISK") & (utc >= monday)]
    assert sorted(row[0] for row in found) == sorted(expected.square_customer_id)

    lost = changes[changes.to_segment == "LOST"].assign(month=utc.dt.to_period("M").dt.start_time.dt.date)
    expected_lost = lost.groupby(["organization_id", "month"])["square_customer_id"].nunique().to_dict()
    found_lost = {(str(org), month): n for org, month, n in refreshed.execute(lost_per_month).fetchall()}
    assert found_lost == expected_lost and len(found_lost) > len(organization_ids(refreshed))
