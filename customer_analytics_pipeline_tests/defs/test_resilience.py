"""What a refresh survives: a worker SIGKILLed at any point of its transaction, a lost
connection, an organization deleted under it, and hostile source data.

Each test states the outcome it demands precisely enough to fail: the state of every
organization is compared with a full snapshot of the rows before the refresh and with
the independent oracle's rows after it, so a half-committed refresh shows up.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, instance_for_test, materialize

import customer_analytics_pipeline
from customer_analytics_pipeline.defs.partitions import (
    ORGANIZATIONS_PARTITION_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse.connection import APPLICATION_NAME
from customer_analytics_pipeline.warehouse.refresh import (
    ORGANIZATION_LOCK_NAMESPACE,
    RefreshParameters,
    refresh_customer_analytics,
)
from customer_analytics_pipeline.warehouse.run_history import CRON_NAME
from customer_analytics_pipeline_tests.helpers import (
    anchor,
    customer_analytics,
    organization_ids,
    organizations_by_size,
    refresh_job,
)
from customer_analytics_pipeline_tests.oracle import (
    assert_frames_equal_cellwise,
    expected_customer_analytics,
    load_source_frames,
    read_customer_analytics,
)
from customer_analytics_pipeline_tests.view_oracle import (
    assert_view_frames_equal_cellwise,
    expected_appointments_by_location_daily,
    read_appointments_view,
)

# Where this test process imports the package from: the worker subprocess must run the
# very same code (a patched copy of the package included).
PACKAGE_ROOT = str(Path(customer_analytics_pipeline.__file__).resolve().parents[1])


# --------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Polls ``predicate`` until it returns something truthy; fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pipeline_sessions(conn: psycopg.Connection) -> list[tuple]:
    """The pipeline's sessions in this database (other than ``conn`` itself)."""
    return conn.execute(
        "SELECT pid, state, wait_event_type, wait_event, left(query, 120) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
        (APPLICATION_NAME,),
    ).fetchall()


def advisory_locks(conn: psycopg.Connection, but: tuple[int, ...] = ()) -> list[tuple]:
    """Advisory locks held or awaited in this database by any session but ``conn`` and ``but``."""
    return conn.execute(
        "SELECT l.pid, l.classid, l.objid, l.granted FROM pg_locks AS l"
        " JOIN pg_database AS d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND d.datname = current_database() AND l.pid <> pg_backend_pid()"
        " AND l.pid <> ALL(%s)", (list(but),)
    ).fetchall()


def assert_nothing_left_behind(conn: psycopg.Connection, timeout: float = 10, but: tuple[int, ...] = ()) -> None:
    """No pipeline session and no advisory lock (but those of ``but``) survives (polled:
    the server notices a dead client as soon as it reads from its socket)."""
    wait_until(lambda: not pipeline_sessions(conn), timeout, "the pipeline's sessions to end")
    assert advisory_locks(conn, but) == [], "an advisory lock outlived its session"


def application_log_statuses(conn: psycopg.Connection, run_id: str) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT payload->>'status' FROM application_logs WHERE payload->>'cron_name' = %s"
        " AND payload->>'dagster_run_id' = %s ORDER BY id", (CRON_NAME, run_id))]


def assert_table_matches_oracle(conn: psycopg.Connection, as_of: datetime) -> None:
    expected = expected_customer_analytics(load_source_frames(conn), as_of)
    assert_frames_equal_cellwise(read_customer_analytics(conn), expected)


def run_asset(database: PostgresResource, keys: list[str], as_of: datetime, instance=None):
    """customer_analytics through Dagster for a range of organizations, as test_failures does."""
    instance = instance or DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
    return materialize(
        [customer_analytics],
        instance=instance,
        resources={"database": database},
        run_config={"ops": {"customer_analytics": {"config": {"as_of": as_of.isoformat()}}}},
        tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
        raise_on_error=False,
    )


def step_failures(result) -> list[str]:
    """Each STEP_FAILURE's cause (a Failure's description, else the error), for messages."""
    causes = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.event_specific_data
            causes.append(data.user_failure_data.description if data.user_failure_data else data.error.to_string())
    return causes


def retry_causes(result) -> list[set[str]]:
    """For each STEP_UP_FOR_RETRY, the exception class names of its error and its causes."""
    causes = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_UP_FOR_RETRY:
            names, error = set(), event.event_specific_data.error
            while error is not None:
                names.add(error.cls_name)
                error = error.cause or error.context
            causes.append(names)
    return causes


class Interference(threading.Thread):
    """Takes a lock in the pipeline's way from a session of its own (``hold``), waits
    until a pipeline session is blocked by it, then ``act(holder, admin, pid)``, then
    ends the holder's transaction (if ``act`` did not), releasing the lock."""

    def __init__(self, database_url: str, hold: Callable[[psycopg.Connection], None],
                 act: Callable[[psycopg.Connection, psycopg.Connection, int], None], timeout: float = 60):
        super().__init__(daemon=True)
        self.database_url, self.hold, self.act, self.timeout = database_url, hold, act, timeout
        self.holding = threading.Event()
        self.blocked_pids: list[int] = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.database_url) as holder, \
                    psycopg.connect(self.database_url, autocommit=True) as admin:
                try:
                    self.hold(holder)  # inside the holder's transaction
                    self.holding.set()
                    (pid,) = wait_until(lambda: admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = %s AND %s = ANY(pg_blocking_pids(pid))",
                        (APPLICATION_NAME, holder.info.backend_pid)).fetchone(),
                        self.timeout, "a pipeline session blocked by the holder")
                    self.blocked_pids.append(pid)
                    self.act(holder, admin, pid)
                finally:
                    holder.rollback()  # no-op when act committed
        except Exception as error:  # noqa: BLE001 (re-raised in the test by interfering)
            self.error = error
        finally:
            self.holding.set()


@contextmanager
def interfering(database_url, hold, act) -> Iterator[Interference]:
    interference = Interference(database_url, hold, act)
    interference.start()
    assert interference.holding.wait(30)
    try:
        yield interference
    finally:
        interference.join(90)
        assert not interference.is_alive()
    if interference.error is not None:
        raise interference.error


def hold_organization_lock(organization_id: str) -> Callable[[psycopg.Connection], None]:
    """The refresh's per-organization advisory lock (namespace, hashtext(id)), as another refresh holds it."""
    def hold(holder: psycopg.Connection) -> None:
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ORGANIZATION_LOCK_NAMESPACE, organization_id))
    return hold


def hold_rows(where: str, params: tuple) -> Callable[[psycopg.Connection], None]:
    """Row locks on customer_analytics rows, so the refresh blocks inside its upsert."""
    def hold(holder: psycopg.Connection) -> None:
        locked = holder.execute(f"SELECT 1 FROM customer_analytics WHERE {where} FOR UPDATE", params).fetchall()
        assert locked, "no customer_analytics row to lock"
    return hold


def initial_refresh(conn: psycopg.Connection, as_of: datetime) -> None:
    refresh_customer_analytics(conn, organization_ids(conn), RefreshParameters(mode="full", as_of=as_of))


# --------------------------------------------------------------------------------------
# 1. SIGKILL at each point of a refresh
# --------------------------------------------------------------------------------------
# The worker: refreshes every organization the way the asset does (run history written
# inside the transaction), announcing each point it reaches on stdout; at the point it
# is told to stop at it sleeps, and the parent SIGKILLs it there.
WORKER = r"""
import sys, time
from customer_analytics_pipeline.warehouse import refresh as refresh_module
from customer_analytics_pipeline.warehouse.refresh import RefreshParameters, parse_as_of, refresh_customer_analytics
from customer_analytics_pipeline.defs.resources import PostgresResource
from customer_analytics_pipeline.warehouse.run_history import record_success

url, mode, as_of, stop_at, run_id = sys.argv[1:6]

def reached(point):
    print("@" + point, flush=True)
    if point == stop_at:
        time.sleep(120)  # the parent kills us here

# The SQL file a step loads marks the end of the step before it.
NEXT_FILE = {"refresh/compute_customer_rows.sql": "targets_selected",
             "refresh/record_refresh_state.sql": "rows_written"}
load_sql = refresh_module.load_sql
def marking_load_sql(name):
    if name in NEXT_FILE:
        reached(NEXT_FILE[name])
    return load_sql(name)
refresh_module.load_sql = marking_load_sql

def log(message):
    if message.startswith("locked"):
        reached("locked")
    elif message.startswith("recomputed"):
        reached("rows_computed")

def before_commit(conn, result):
    record_success(conn, result, run_id)
    reached("before_commit")

with PostgresResource(database_url=url).connect() as conn:
    organizations = [row[0] for row in conn.execute("SELECT id::text FROM organizations ORDER BY id")]
    refresh_customer_analytics(conn, organizations, RefreshParameters(mode=mode, as_of=parse_as_of(as_of)),
                               log=log, before_commit=before_commit)
    reached("committed")
"""
KILL_POINTS = ["locked", "targets_selected", "rows_computed", "rows_written", "before_commit", "committed"]


class Worker:
    """The worker subprocess, its stdout read line by line on a thread (so waits time out)."""

    def __init__(self, args: list[str], cwd: Path):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
        self.stderr_path = cwd / "worker.stderr"
        with open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen([sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE,
                                            stderr=stderr, text=True, cwd=cwd, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, point: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"worker did not reach {point} in {timeout}s; saw {self.seen}") from None
            if line is None:
                self.process.wait(10)
                raise AssertionError(f"worker exited ({self.process.returncode}) before reaching {point}; saw"
                                     f" {self.seen}; stderr: {self.stderr_path.read_text()[-2000:]}")
            self.seen.append(line)
            if line == f"@{point}":
                return

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL, "the worker was not killed: it had already exited"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.process.stdout.close()


def table_rows(conn, organization_id) -> list[tuple]:
    """Every column of an organization's rows (created_at, updated_at included)."""
    return conn.execute("SELECT * FROM customer_analytics WHERE organization_id = %s"
                        " ORDER BY square_customer_id COLLATE \"C\"", (organization_id,)).fetchall()


def refresh_state(conn, organization_id) -> tuple | None:
    """(as_of, mode, row_count, last_refreshed_at) of the organization's last refresh."""
    return conn.execute("SELECT as_of, mode, row_count, last_refreshed_at FROM customer_analytics_refresh_state"
                        " WHERE organization_id = %s", (organization_id,)).fetchone()


def change_every_organization(conn, organizations: list[str], stamp: datetime) -> None:
    """Source edits in each organization, stamped inside recent's look-back: a renamed
    client, a booking turned into a no-show, a new client."""
    with conn.transaction():
        for organization_id in organizations:
            conn.execute(
                "UPDATE square_existing_clients SET given_name = 'Renamed ''x'' %%s', updated_at = %s"
                " WHERE organization_id = %s AND square_customer_id ="
                " (SELECT min(square_customer_id COLLATE \"C\") FROM square_existing_clients"
                " WHERE organization_id = %s)",
                (stamp, organization_id, organization_id))
            conn.execute(
                "UPDATE bookings SET status = 'NO_SHOW', updated_at = %s WHERE organization_id = %s AND id ="
                " (SELECT min(id COLLATE \"C\") FROM bookings WHERE organization_id = %s AND status = 'ACCEPTED'"
                " AND square_customer_id IS NOT NULL)", (stamp, organization_id, organization_id))
            conn.execute(
                "INSERT INTO square_existing_clients (organization_id, square_customer_id, given_name, created_at,"
                " updated_at) VALUES (%s, 'killed-refresh-new-client', 'New', %s, %s)",
                (organization_id, stamp, stamp))


@pytest.mark.parametrize("mode", ["full", "recent"])
@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_any_point_leaves_old_rows_or_the_committed_refresh(generated, database_url, tmp_path, mode,
                                                                       point):
    conn = generated
    organizations = organization_ids(conn)
    initial_refresh(conn, anchor(conn))
    new_as_of = anchor(conn) + timedelta(days=75)  # time alone moves segments too
    change_every_organization(conn, organizations, new_as_of - timedelta(days=1))

    before = {org: (table_rows(conn, org), refresh_state(conn, org)) for org in organizations}
    expected = expected_customer_analytics(load_source_frames(conn), new_as_of)
    expected_of = {org: expected[expected.organization_id == org].reset_index(drop=True) for org in organizations}
    for org in organizations:  # otherwise "old" and "new" could not be told apart
        with pytest.raises(AssertionError):
            assert_frames_equal_cellwise(read_customer_analytics(conn, [org]), expected_of[org])

    run_id = f"killed-{uuid.uuid4()}"
    worker = Worker([database_url, mode, new_as_of.isoformat(), point, run_id], tmp_path)
    try:
        worker.wait_for(point)
        worker.kill()
    finally:
        worker.close()
    assert_nothing_left_behind(conn)

    def state_of(org: str) -> str:
        """'old' or 'new' for the table rows and the refresh_state row together; never a mix."""
        rows, state = table_rows(conn, org), refresh_state(conn, org)
        if rows == before[org][0]:
            table = "old"
        else:
            try:
                assert_frames_equal_cellwise(read_customer_analytics(conn, [org]), expected_of[org])
            except AssertionError as mix:
                raise AssertionError(f"organization {org} holds neither its old rows nor the new ones"
                                     f" after a kill at {point}: {mix}") from None
            table = "new"
        recorded = "old" if state == before[org][1] else "new" if state and state[0] == new_as_of else state
        assert recorded == table, f"organization {org}: rows are {table}, refresh_state is {recorded}"
        return table

    states = {org: state_of(org) for org in organizations}
    committed = application_log_statuses(conn, run_id) == ["success"]
    assert committed == all(state == "new" for state in states.values()), (states, committed)
    if point == "committed":
        assert committed, "the refresh had returned, yet its rows are not all there"
    # Per organization old-or-new is the contract; this implementation commits the batch at once.
    assert set(states.values()) == {"new" if point == "committed" else "old"}, states

    # Nothing is left waiting: a new refresh that may wait 1 s for a lock goes through.
    started = time.monotonic()
    with PostgresResource(database_url=database_url, lock_timeout_seconds=1).connect() as again:
        refresh_customer_analytics(again, organizations, RefreshParameters(mode=mode, as_of=new_as_of))
    assert time.monotonic() - started < 10
    assert {org: state_of(org) for org in organizations} == dict.fromkeys(organizations, "new")
    assert_table_matches_oracle(conn, new_as_of)


class SessionOutlivedWorker(AssertionError):
    """The server kept a SIGKILLed worker's session, and its locks, alive (as it did until
    the pipeline's sessions set client_connection_check_interval)."""


def test_sigkill_while_the_refresh_waits_for_a_lock_frees_its_other_locks(generated, database_url, tmp_path):
    conn = generated
    # The organization whose lock comes last: a refresh waiting for it holds all the others.
    (last, *others) = [row[0] for row in conn.execute(
        "SELECT id::text FROM organizations ORDER BY hashtext(id::text) DESC")]
    initial_refresh(conn, anchor(conn))
    before = {org: table_rows(conn, org) for org in organization_ids(conn)}
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ORGANIZATION_LOCK_NAMESPACE, last))
        worker = Worker([database_url, "full", (anchor(conn) + timedelta(days=75)).isoformat(), "-",
                         f"killed-{uuid.uuid4()}"], tmp_path)
        try:
            wait_until(lambda: conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
                " AND %s = ANY(pg_blocking_pids(pid))", (APPLICATION_NAME, holder.info.backend_pid)).fetchone(),
                30, "the worker to wait for the held lock")
            worker.kill()
        finally:
            worker.close()
        try:
            assert_nothing_left_behind(conn, timeout=4, but=(holder.info.backend_pid,))
            lingering = None
        except AssertionError:
            lingering = (pipeline_sessions(conn), advisory_locks(conn, but=(holder.info.backend_pid,)))
        holder.rollback()
    # Whatever the server did with the orphaned session, it never committed anything.
    assert_nothing_left_behind(conn)
    assert {org: table_rows(conn, org) for org in before} == before
    if lingering:
        raise SessionOutlivedWorker(f"4 s after the worker's SIGKILL its session still runs and holds"
                                    f" the locks of {len(others)} other organization(s): {lingering}")


# --------------------------------------------------------------------------------------
# 2. A lost connection is retried to success
# --------------------------------------------------------------------------------------
def terminate(holder, admin, pid) -> None:
    """What a PostgreSQL restart does to the pipeline's session (waits until it is gone)."""
    assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0]


@pytest.mark.parametrize("while_", ["waiting_for_its_lock", "writing_rows"])
def test_a_lost_connection_is_retried_to_success(generated, database_url, while_):
    conn = generated
    keys = organization_ids(conn)
    as_of = anchor(conn)
    if while_ == "waiting_for_its_lock":
        hold = hold_organization_lock(keys[0])
    else:  # blocked inside the upsert, after its locks, targets and computed rows
        initial_refresh(conn, as_of - timedelta(days=1))
        org = organizations_by_size(conn)[0]
        conn.execute("UPDATE square_existing_clients SET given_name = 'Changed' WHERE organization_id = %s", (org,))
        hold = hold_rows("organization_id = %s", (org,))

    with interfering(database_url, hold, terminate) as interference:
        result = run_asset(PostgresResource(database_url=database_url), keys, as_of)

    assert len(interference.blocked_pids) == 1
    assert result.success, step_failures(result)
    (cause,) = retry_causes(result)  # exactly one retry, for the lost connection
    assert cause & {"AdminShutdown", "OperationalError"}, cause
    assert application_log_statuses(conn, result.run_id) == ["success"]
    assert_table_matches_oracle(conn, as_of)
    assert_nothing_left_behind(conn)


# --------------------------------------------------------------------------------------
# 3. An organization deleted by the application while its refresh runs
# --------------------------------------------------------------------------------------
def tables_with_organization_rows(conn, organization_id: str) -> dict[str, int]:
    """Every base table with an organization_id column that still holds a row of it."""
    tables = [row[0] for row in conn.execute(
        "SELECT c.table_name FROM information_schema.columns AS c JOIN information_schema.tables AS t"
        " USING (table_schema, table_name) WHERE c.table_schema = 'public' AND c.column_name = 'organization_id'"
        " AND t.table_type = 'BASE TABLE' ORDER BY 1")]
    assert "customer_analytics" in tables and "customer_analytics_refresh_state" in tables
    counts = {table: conn.execute(f'SELECT count(*) FROM "{table}" WHERE organization_id = %s',
                                  (organization_id,)).fetchone()[0] for table in tables}
    counts["organizations"] = conn.execute("SELECT count(*) FROM organizations WHERE id = %s",
                                           (organization_id,)).fetchone()[0]
    return {table: count for table, count in counts.items() if count}


# Deleted while the refresh waits for its lock: the refresh finds no such organization.
# Deleted under the refresh's upsert: a foreign-key violation, retried.
@pytest.mark.parametrize("while_, expected_retry_causes", [
    ("waiting_for_its_lock", []), ("writing_its_rows", ["ForeignKeyViolation"])])
def test_organization_deleted_while_its_refresh_runs(generated, database_url, while_, expected_retry_causes):
    conn = generated
    keys = organization_ids(conn)
    doomed = organizations_by_size(conn)[0]
    first_as_of, as_of = anchor(conn) - timedelta(days=1), anchor(conn)
    initial_refresh(conn, first_as_of)
    assert tables_with_organization_rows(conn, doomed)

    def delete_organization(holder, admin, pid) -> None:
        if while_ == "waiting_for_its_lock":
            admin.execute("DELETE FROM organizations WHERE id = %s", (doomed,))
        else:  # the holder owns the row locks the refresh waits for, so it deletes in its transaction
            holder.execute("DELETE FROM organizations WHERE id = %s", (doomed,))
            holder.commit()

    if while_ == "waiting_for_its_lock":
        hold = hold_organization_lock(doomed)
    else:
        # Every row of the organization changes, so the refresh's upsert must lock them;
        # the holder has them all, so the refresh can have written none of them yet.
        conn.execute("UPDATE square_existing_clients SET given_name = 'Changed' WHERE organization_id = %s",
                     (doomed,))
        hold = hold_rows("organization_id = %s", (doomed,))
    instance = DagsterInstance.ephemeral()
    with interfering(database_url, hold, delete_organization) as interference:
        result = run_asset(PostgresResource(database_url=database_url), keys, as_of, instance)

    assert len(interference.blocked_pids) == 1
    assert result.success, step_failures(result)
    causes = retry_causes(result)
    assert len(causes) == len(expected_retry_causes), causes
    assert all(expected in cause for expected, cause in zip(expected_retry_causes, causes, strict=True)), causes
    assert tables_with_organization_rows(conn, doomed) == {}
    assert_table_matches_oracle(conn, as_of)  # every other organization refreshed for as_of
    states = dict(conn.execute("SELECT organization_id::text, as_of FROM customer_analytics_refresh_state").fetchall())
    assert states == {key: as_of for key in keys if key != doomed}
    assert any("have no organizations row" in entry.user_message and doomed in entry.user_message
               for entry in instance.all_logs(result.run_id))
    assert_nothing_left_behind(conn)


# --------------------------------------------------------------------------------------
# 4. Hostile inputs
# --------------------------------------------------------------------------------------
HOSTILE_ORGANIZATION = "00000000-0000-4000-8000-000000000001"  # the first partition of the range
INJECTION = "'); DROP TABLE organizations; --"
HOSTILE_TEXTS = [INJECTION, "%s", "%(as_of)s", "{}", "{0}", "'", '"', "''", "\\", "$1", "\x01\x1b[31mred\x1b[0m",
                 "é ß 😀"]
HOSTILE_CUSTOMERS = HOSTILE_TEXTS + ["", " ", "a", "B", "Robert'); DROP TABLE square_existing_clients;--"]
BIG_CUSTOMER = "big'client %s {}"
BIG_BOOKINGS = 50_000
ODD_ZONES = {"loc-mars": "Mars/Olympus", "loc-empty": "", "loc-lower-utc": "utc", "loc-offset": "+05:00",
             "loc-null": None, "loc-%s'); DROP TABLE locations; --": "Europe/Berlin"}
MEGABYTE_NOTE = ("x" * 997 + "'\x01\x1b\n") * 1000  # 1,001,000 characters
NOTES = HOSTILE_TEXTS + [" \t\r\n", "", None, "\x0b", "\u00a0", MEGABYTE_NOTE]
TECHNICIANS = ["%s", "{}", "'", "", None, INJECTION]


def load_hostile_organization(conn: psycopg.Connection, as_of: datetime) -> None:
    """An organization whose every text is hostile, with odd time zones and a client with
    50,000 bookings; all inserted with bound parameters or COPY, as an application would."""
    org, zones = HOSTILE_ORGANIZATION, list(ODD_ZONES)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (org, INJECTION))
        cur.executemany("INSERT INTO locations (organization_id, square_location_id, name, timezone)"
                        " VALUES (%s, %s, %s, %s)", [(org, loc, INJECTION, zone) for loc, zone in ODD_ZONES.items()])
        clients = HOSTILE_CUSTOMERS + [BIG_CUSTOMER]
        cur.executemany(
            "INSERT INTO square_existing_clients (organization_id, square_customer_id, given_name, family_name,"
            " email_address, phone_number, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(org, customer, HOSTILE_TEXTS[i % len(HOSTILE_TEXTS)], customer or None,
              ["", None, "x'@'y.com", "\x01@\x1b.io", "a@b", INJECTION][i % 6], ["%s", "", None, "+1 (555) '77"][i % 4],
              as_of, as_of) for i, customer in enumerate(clients)])
        bookings, payments = [], []
        for i, customer in enumerate(HOSTILE_CUSTOMERS):
            tie = as_of - timedelta(days=10 + i, hours=i)
            # Three accepted bookings at one instant: byte order picks "%" < "'" < "{",
            # a linguistic collation would not.
            for suffix in ("{}", "'); --", "%s"):
                bookings.append((f"b{i:02d}{suffix}", customer, zones[i % len(zones)], "ACCEPTED", tie,
                                 TECHNICIANS[i % len(TECHNICIANS)], TECHNICIANS[(i + 1) % len(TECHNICIANS)],
                                 NOTES[i % len(NOTES)], NOTES[(i + 3) % len(NOTES)]))
            statuses = ["CANCELLED_BY_CUSTOMER", "NO_SHOW", "accepted", "PENDING", "CANCELLED_BY_SELLER"]
            for j, status in enumerate(statuses):
                bookings.append((f"b{i:02d}-{j}{HOSTILE_TEXTS[j]}", customer, zones[(i + j) % len(zones)], status,
                                 as_of - timedelta(days=200 * j, minutes=i), TECHNICIANS[j], None,
                                 NOTES[(i + j) % len(NOTES)], NOTES[(i * j) % len(NOTES)]))
            payments += [(f"p{i:02d}-{j}{HOSTILE_TEXTS[j]}", customer, status, 1000 * (j + 1), 7 * j, [0, 2500][j % 2],
                          as_of - timedelta(days=j)) for j, status in enumerate(["COMPLETED", "COMPLETED", "FAILED"])]
        for n in range(BIG_BOOKINGS):
            bookings.append((f"big-{n:05d}", BIG_CUSTOMER, zones[n % len(zones)],
                             ["ACCEPTED", "ACCEPTED", "NO_SHOW", "CANCELLED_BY_CUSTOMER", "PENDING"][n % 5],
                             as_of - timedelta(minutes=37 * n), TECHNICIANS[n % len(TECHNICIANS)], f"svc-{n % 3}",
                             NOTES[n % len(NOTES)] if n % 997 == 0 else None, None))
        payments += [(f"big-pay-{n}", BIG_CUSTOMER, "COMPLETED", 4999 + n, n % 11, n % 7, as_of - timedelta(hours=n))
                     for n in range(5_000)]
        with cur.copy("COPY bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
                      " technician_id, service_variation_id, customer_note, seller_note, created_at, updated_at)"
                      " FROM STDIN") as copy:
            for booking in bookings:
                copy.write_row((org, *booking, as_of, as_of))
        with cur.copy("COPY payments (organization_id, id, square_customer_id, status, amount_cents, tip_cents,"
                      " refunded_cents, created_at, updated_at) FROM STDIN") as copy:
            for payment in payments:
                copy.write_row((org, *payment, as_of))
        cur.executemany(
            "INSERT INTO referral_profiles (organization_id, square_customer_id, referral_code, activated_at,"
            " referral_source, total_referrals, total_rewards_cents, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(org, customer, HOSTILE_TEXTS[i % len(HOSTILE_TEXTS)], None if i % 3 == 0 else as_of,
              HOSTILE_TEXTS[(i + 1) % len(HOSTILE_TEXTS)], i, 100 * i, as_of, as_of)
             for i, customer in enumerate(HOSTILE_CUSTOMERS) if i % 2 == 0])


def test_hostile_inputs_refresh_correctly_and_pass_every_check(generated, database_url):
    conn = generated
    as_of = anchor(conn)
    load_hostile_organization(conn, as_of)
    counts_before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("organizations", "locations", "square_existing_clients", "bookings")}
    keys = organization_ids(conn)
    assert keys[0] == HOSTILE_ORGANIZATION

    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITION_NAME, keys)
        job = refresh_job(database_url)
        result = job.execute_in_process(
            instance=instance,
            run_config={"ops": {"customer_analytics": {"config": {"mode": "full", "as_of": as_of.isoformat()}}}},
            tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
            raise_on_error=False,
        )
        assert result.success, step_failures(result)
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert len(evaluations) == 8, sorted(evaluations)
        assert [name for name, e in evaluations.items() if not e.passed] == []

    assert {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in counts_before} == counts_before
    frames = load_source_frames(conn)
    expected = expected_customer_analytics(frames, as_of)
    actual = read_customer_analytics(conn)
    assert_frames_equal_cellwise(actual, expected)
    assert_view_frames_equal_cellwise(read_appointments_view(conn),
                                      expected_appointments_by_location_daily(frames, expected))
    # The data really is as hostile as intended.
    big = conn.execute("SELECT total_accepted_bookings, total_no_shows, jsonb_array_length(booking_notes)"
                       " FROM customer_analytics WHERE organization_id = %s AND square_customer_id = %s",
                       (HOSTILE_ORGANIZATION, BIG_CUSTOMER)).fetchone()
    assert big[0] == 2 * BIG_BOOKINGS // 5 and big[1] == BIG_BOOKINGS // 5 and big[2] > 0
    assert conn.execute("SELECT count(*) FROM customer_analytics WHERE booking_notes::text LIKE %s",
                        ("%" + "x" * 997 + "%",)).fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM customer_analytics WHERE organization_id = %s"
                        " AND square_customer_id = ''", (HOSTILE_ORGANIZATION,)).fetchone()[0] == 1
