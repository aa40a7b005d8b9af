"""The command line end to end in subprocesses, on scratch databases: README's demo, the
operators' commands, and the development commands refusing an application's database."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import zlib

import psutil
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from customer_analytics_pipeline.dev.dagster_instance import sqlalchemy_url
from customer_analytics_pipeline.warehouse.checks.evaluation import evaluate_checks
from customer_analytics_pipeline.warehouse.connection import APPLICATION_NAME
from customer_analytics_pipeline.warehouse.locks import ORGANIZATION_LOCK_NAMESPACE
from customer_analytics_pipeline.warehouse.migrations import create_source_tables
from customer_analytics_pipeline_tests.helpers import free_port, serves, with_signals_ignored

PASSWORD_MARKER = "Pw-marker-7c1d"


def dagster_storage_text(storage_url: str) -> str:
    """Every value of every table of a Dagster storage database as text, its compressed
    snapshots (job and execution-plan snapshots are zlib-compressed) decompressed."""
    values = []
    with psycopg.connect(storage_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    if isinstance(value, bytes):
                        try:
                            value = zlib.decompress(value).decode("utf-8", "replace")
                        except zlib.error:
                            value = value.decode("utf-8", "replace")
                    values.append(str(value))
    return "\n".join(values)


def test_demo_loads_data_and_refreshes_every_organization(make_scratch_database, tmp_path):
    # trust authentication ignores the password; it must still never reach Dagster's storage
    database_url = make_conninfo(make_scratch_database(), password=PASSWORD_MARKER)
    storage_url = make_scratch_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DAGSTER_POSTGRES_URL": sqlalchemy_url(storage_url),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "customer_analytics_pipeline", "demo",
         "--organizations", "4", "--clients-per-org", "30", "--batch-size", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    output = completed.stdout
    assert "loading demo data" in output and "batch 2:" in output
    assert "checks 8/8 passed" in output and "failed" not in output
    with psycopg.connect(database_url) as conn:
        clients, rows, refreshed, organizations = conn.execute(
            "SELECT (SELECT count(*) FROM square_existing_clients), (SELECT count(*) FROM customer_analytics),"
            " (SELECT count(*) FROM customer_analytics_refresh_state), (SELECT count(*) FROM organizations)"
        ).fetchone()
    assert rows == clients > 0 and refreshed == organizations == 4
    assert f"customer_analytics: {clients} customers" in output
    with psycopg.connect(database_url) as conn:
        per_organization = conn.execute(
            "SELECT o.name, o.id::text, count(c.square_customer_id) FROM organizations o"
            " LEFT JOIN square_existing_clients c ON c.organization_id = o.id GROUP BY o.id, o.name ORDER BY o.id"
        ).fetchall()
    lines = output.splitlines()
    for name, organization_id, customers in per_organization:  # each organization by name, with its count
        assert any(line.split()[-4:-2] == [str(customers), "customers"] and organization_id in line
                   and line.strip().startswith(name) for line in lines), (name, output)
    first_batch = sum(customers for *_, customers in per_organization[:2])  # partitions go in id order
    assert f"batch 1: 2 organization(s), {first_batch} rows" in output
    stored = dagster_storage_text(storage_url)
    assert "DATABASE_URL" in stored  # the resource is bound by the variable's name...
    assert PASSWORD_MARKER not in stored and PASSWORD_MARKER not in output  # ...never its value


def run_cli(*arguments: str, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "customer_analytics_pipeline", *arguments],
        cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )


def database_snapshot(database_url: str) -> tuple:
    """Every relation (tables, indexes, views) and the application's row counts."""
    with psycopg.connect(database_url) as conn:
        relations = conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM square_existing_clients),"
            " (SELECT count(*) FROM bookings)"
        ).fetchone()
    return relations, counts


@pytest.fixture
def application_database(make_scratch_database) -> str:
    """A database as an application leaves it: its tables and one organization with a
    client and a booking, nothing of the pipeline's."""
    database_url = make_scratch_database()
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_source_tables(conn)
        conn.execute("INSERT INTO organizations (id, name) VALUES ('00000000-0000-4000-8000-00000000a001', 'Real')")
        conn.execute(
            "INSERT INTO square_existing_clients (organization_id, square_customer_id, created_at, updated_at)"
            " VALUES ('00000000-0000-4000-8000-00000000a001', 'C1', now(), now())"
        )
        conn.execute(
            "INSERT INTO bookings (organization_id, id, square_customer_id, location_id, status, start_at,"
            " created_at, updated_at) VALUES ('00000000-0000-4000-8000-00000000a001', 'B1', 'C1', 'L1',"
            " 'ACCEPTED', now(), now(), now())"
        )
    return database_url


@pytest.mark.parametrize("arguments", [("demo",), ("demo", "--reload"), ("ui", "--reload"), ("ui",)])
def test_development_commands_refuse_an_application_database(application_database, make_scratch_database,
                                                            tmp_path, arguments):
    before = database_snapshot(application_database)
    env = {"DATABASE_URL": application_database, "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "DAGSTER_POSTGRES_URL": sqlalchemy_url(make_scratch_database())}
    completed = run_cli(*arguments, "--organizations", "2", "--clients-per-org", "5", env=env, cwd=tmp_path)

    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "refusing to use this database for demo data" in completed.stdout
    assert "organization(s) that are not demo data" in completed.stdout or "did not create" in completed.stdout
    assert database_snapshot(application_database) == before  # no table, index, view or row added or removed
    assert not (tmp_path / "dagster_home").exists()


def test_development_commands_refuse_an_empty_application_database(make_scratch_database, tmp_path):
    database_url = make_scratch_database()
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_source_tables(conn)
    before = database_snapshot(database_url)
    completed = run_cli("demo", env={"DATABASE_URL": database_url}, cwd=tmp_path)
    assert completed.returncode == 2 and "did not create" in completed.stdout
    assert database_snapshot(database_url) == before


def test_malformed_database_url_is_reported_without_its_password(tmp_path):
    for command in (("migrate",), ("refresh",), ("check",)):
        completed = run_cli(*command, env={"DATABASE_URL": "analytics:Sup3rSecretPw@db.internal/app"}, cwd=tmp_path)
        output = completed.stdout + completed.stderr
        assert completed.returncode == 2, output
        assert "DATABASE_URL is not a valid libpq URL" in output
        assert "Sup3rSecretPw" not in output


def test_refresh_command_refreshes_and_reports_bad_data_per_organization(application_database, tmp_path):
    env = {"DATABASE_URL": application_database}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    completed = run_cli("refresh", "--mode", "full", "--as-of", "2026-06-01T00:00:00", env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with psycopg.connect(application_database, autocommit=True) as conn:
        assert conn.execute("SELECT total_accepted_bookings FROM customer_analytics").fetchall() == [(1,)]
        conn.execute("INSERT INTO organizations (id, name) VALUES ('00000000-0000-4000-8000-00000000a002', 'Bad')")
        conn.execute(
            "INSERT INTO square_existing_clients (organization_id, square_customer_id, created_at, updated_at)"
            " VALUES ('00000000-0000-4000-8000-00000000a002', 'C-OVERFLOW', now(), now())"
        )
        conn.execute(
            "INSERT INTO payments (organization_id, id, square_customer_id, status, amount_cents, created_at,"
            " updated_at) SELECT '00000000-0000-4000-8000-00000000a002', 'P' || n, 'C-OVERFLOW', 'COMPLETED',"
            " 9223372036854775807, now(), now() FROM generate_series(1, 2) AS n"
        )
        conn.execute("UPDATE bookings SET status = 'NO_SHOW'")

    completed = run_cli("refresh", env=env, cwd=tmp_path)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert ("organization 00000000-0000-4000-8000-00000000a002 (Bad), customer C-OVERFLOW: bigint out of range"
            in completed.stdout)
    with psycopg.connect(application_database) as conn:  # the healthy organization committed
        assert conn.execute("SELECT total_accepted_bookings, total_no_shows FROM customer_analytics").fetchall() == [
            (0, 1)]
        (error,) = conn.execute(
            "SELECT payload->>'error' FROM application_logs WHERE payload->>'status' = 'failure'").fetchone()
        assert "C-OVERFLOW" in error


def test_full_refresh_command_applies_the_segment_history_retention(application_database, tmp_path):
    """The command's full refresh is the asset's batch: change rows older than
    CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS are deleted after it commits, a recent run
    keeps them, and each batch writes its success row."""
    env = {"DATABASE_URL": application_database, "CUSTOMER_ANALYTICS_SEGMENT_HISTORY_DAYS": "30"}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_cli("refresh", "--mode", "full", env=env, cwd=tmp_path).returncode == 0
    with psycopg.connect(application_database, autocommit=True) as conn:
        aged = conn.execute(
            "UPDATE customer_segment_changes SET changed_at = changed_at - interval '40 days'").rowcount
    assert aged > 0

    completed = run_cli("refresh", "--mode", "recent", env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    with psycopg.connect(application_database) as conn:
        assert conn.execute("SELECT count(*) FROM customer_segment_changes").fetchone()[0] == aged

    completed = run_cli("refresh", "--mode", "full", env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"{aged} change row(s) past 30 days deleted" in completed.stdout
    with psycopg.connect(application_database) as conn:
        assert conn.execute("SELECT count(*) FROM customer_segment_changes").fetchone()[0] == 0
        successes = conn.execute(
            "SELECT count(*) FROM application_logs WHERE payload->>'status' = 'success'").fetchone()[0]
    assert successes == 2  # the recent run found nothing changed: no batch, no row


def test_refresh_command_refuses_bad_input(tmp_path, application_database):
    for arguments, message in [
        (("--organization", "not-a-uuid"), "organization partition key 'not-a-uuid' is not a UUID"),
        (("--as-of", "tomorrow"), "as_of must be an ISO 8601 timestamp"),
    ]:
        completed = run_cli("refresh", *arguments, env={"DATABASE_URL": application_database}, cwd=tmp_path)
        assert completed.returncode == 2 and message in completed.stdout, completed.stdout + completed.stderr


def test_refresh_recent_selects_what_the_hourly_tick_selects(application_database, tmp_path):
    """Without --organization, `refresh --mode recent` refreshes only the organizations
    whose source changed (the hourly tick's selection) and records the others verified;
    batches are sized in customers (--customers-per-run); the look-back and the batch
    size in organizations are gone."""
    env = {"DATABASE_URL": application_database}
    as_of = ("--as-of", "2026-06-01T00:00:00")
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_cli("refresh", "--mode", "full", *as_of, env=env, cwd=tmp_path).returncode == 0

    quiet = run_cli("refresh", "--mode", "recent", *as_of, env=env, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "0 organization(s) to refresh, 1 verified unchanged" in quiet.stdout
    with psycopg.connect(application_database, autocommit=True) as conn:
        assert conn.execute("SELECT verified_at IS NOT NULL FROM customer_analytics_refresh_state").fetchall() == [
            (True,)]
        conn.execute("UPDATE bookings SET status = 'NO_SHOW'")  # updated_at left as it was

    changed = run_cli("refresh", "--mode", "recent", *as_of, "--customers-per-run", "1", env=env, cwd=tmp_path)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "1 organization(s) to refresh, 0 verified unchanged" in changed.stdout
    with psycopg.connect(application_database) as conn:
        assert conn.execute("SELECT total_accepted_bookings, total_no_shows FROM customer_analytics").fetchall() == [
            (0, 1)]

    for arguments, message in [
        (("--lookback-days", "90"), "unrecognized arguments: --lookback-days"),
        (("--batch-size", "2"), "unrecognized arguments: --batch-size"),
        (("--customers-per-run", "0"), "--customers-per-run must be at least 1"),
    ]:
        completed = run_cli("refresh", *arguments, env=env, cwd=tmp_path)
        output = completed.stdout + completed.stderr
        assert completed.returncode == 2 and message in output, output


def test_check_command_prints_the_eight_checks_per_organization(application_database, tmp_path):
    env = {"DATABASE_URL": application_database}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_cli("refresh", env=env, cwd=tmp_path).returncode == 0
    completed = run_cli("check", env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    header, row = completed.stdout.splitlines()[:2]
    assert header.split()[:2] == ["organization", "name"] and len(header.split()) == 10
    assert row.split() == ["00000000-0000-4000-8000-00000000a001", "Real"] + ["ok"] * 8

    with psycopg.connect(application_database, autocommit=True) as conn:
        conn.execute("UPDATE customer_analytics SET total_no_shows = -1, given_name = 'Zelda-Marker'")
    completed = run_cli("check", "--organization", "00000000-0000-4000-8000-00000000a001", env=env, cwd=tmp_path)
    assert completed.returncode == 1
    row = completed.stdout.splitlines()[1].split()
    assert row[2:] == ["ok", "ok", "ERROR", "1", "ok", "ok", "ok", "ok", "ok"]
    assert f"sample_record_valid: organization {APPLICATION_ORGANIZATION} (Real), customer C1" in completed.stdout
    assert "failed: sample_record_valid" in completed.stdout and "Zelda-Marker" not in completed.stdout


APPLICATION_ORGANIZATION = "00000000-0000-4000-8000-00000000a001"
NO_SUCH_ORGANIZATION = "00000000-0000-4000-8000-0000000000f1"


def assert_one_line_failure(completed: subprocess.CompletedProcess, exit_code: int, *expected: str) -> str:
    """Exited with ``exit_code`` after one ``error:`` line saying each of ``expected``; no traceback."""
    output = completed.stdout + completed.stderr
    assert completed.returncode == exit_code, output
    assert "Traceback" not in output, output
    errors = [line for line in completed.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def application_log_payloads(database_url: str) -> list[dict]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT payload FROM application_logs ORDER BY id")]


@pytest.mark.parametrize("command", ["refresh", "check"])
def test_unknown_organizations_are_named_and_refused(application_database, tmp_path, command):
    env = {"DATABASE_URL": application_database}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    completed = run_cli(command, "--organization", APPLICATION_ORGANIZATION, "--organization", NO_SUCH_ORGANIZATION,
                        env=env, cwd=tmp_path)
    assert_one_line_failure(completed, 2, "unknown organization", NO_SUCH_ORGANIZATION)
    assert APPLICATION_ORGANIZATION not in completed.stdout.splitlines()[-1]
    assert application_log_payloads(application_database) == []
    with psycopg.connect(application_database) as conn:
        assert conn.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0


def unreachable_urls(server_url: str) -> dict[str, tuple[str, str]]:
    """A DATABASE_URL for each way of not reaching the database, with what the message names."""
    return {
        "refused port": (make_conninfo(server_url, host="127.0.0.1", port="1"), "127.0.0.1:1"),
        "unknown host": (make_conninfo(server_url, host="no-such-host.invalid"), "no-such-host.invalid"),
        "unknown database": (make_conninfo(server_url, dbname="no_such_database_x"), "no_such_database_x"),
        "unknown role": (make_conninfo(server_url, user="no_such_role_x"), "no_such_role_x"),
    }


@pytest.mark.parametrize("way", ["refused port", "unknown host", "unknown database", "unknown role"])
@pytest.mark.parametrize("command", ["migrate", "refresh", "check"])
def test_an_unreachable_database_is_one_line_naming_it(server_url, tmp_path, way, command):
    url, named = unreachable_urls(server_url)[way]
    completed = run_cli(command, env={"DATABASE_URL": make_conninfo(url, password=PASSWORD_MARKER)}, cwd=tmp_path)
    assert_one_line_failure(completed, 3, "error: database", named)
    assert PASSWORD_MARKER not in completed.stdout + completed.stderr


def test_migrate_as_the_runtime_role_is_one_line(application_database, make_role, tmp_path):
    as_runtime_role = make_role(application_database)
    completed = run_cli("migrate", env={"DATABASE_URL": as_runtime_role}, cwd=tmp_path)
    assert_one_line_failure(completed, 3, "migrate must run as the owner", "permission denied")


def test_a_lost_connection_during_refresh_is_one_line_and_a_failure_row(application_database, tmp_path):
    """The server ends the refresh's session while it waits for its lock (a restart, an
    idle timeout): one line naming the organization and the cause, exit 1, the failure
    in application_logs, the previous rows kept."""
    env = {"DATABASE_URL": application_database}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    with psycopg.connect(application_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))",
                       (ORGANIZATION_LOCK_NAMESPACE, APPLICATION_ORGANIZATION))
        with subprocess.Popen([sys.executable, "-m", "customer_analytics_pipeline", "refresh"], cwd=tmp_path,
                              env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as process:
            deadline = time.monotonic() + 60
            while not (blocked := holder.execute(
                    "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (holder.info.backend_pid,)).fetchone()):
                assert time.monotonic() < deadline and process.poll() is None, "the refresh never waited for the lock"
                time.sleep(0.1)
            holder.execute("SELECT pg_terminate_backend(%s)", blocked)
            stdout, stderr = process.communicate(timeout=120)
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert completed.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr, stdout + stderr
    (line,) = [line for line in stdout.splitlines() if "failed" in line]
    assert APPLICATION_ORGANIZATION in line and "terminat" in line, line
    (payload,) = application_log_payloads(application_database)
    assert payload["status"] == "failure" and payload["organizations"] == [APPLICATION_ORGANIZATION]
    assert "terminat" in payload["error"] and payload["dagster_run_id"].startswith("cli:")
    with psycopg.connect(application_database) as conn:
        assert conn.execute("SELECT count(*) FROM customer_analytics").fetchone()[0] == 0


def test_check_warns_of_segment_shifts_without_a_customer(application_database, tmp_path):
    """The segment-share WARN concerns an organization, not a customer: its line names none."""
    env = {"DATABASE_URL": application_database}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    assert run_cli("refresh", env=env, cwd=tmp_path).returncode == 0
    with psycopg.connect(application_database, autocommit=True) as conn:
        evaluate_checks(conn, remember_segments=True)  # what the scheduled check saves
        conn.execute("UPDATE customer_analytics SET customer_segment ="
                     " CASE customer_segment WHEN 'LOST' THEN 'NEW' ELSE 'LOST' END")
    completed = run_cli("check", env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (warning,) = [line for line in completed.stdout.splitlines() if line.startswith("[WARN]")]
    assert f"segment_distribution: organization {APPLICATION_ORGANIZATION} (Real): segment shares moved" in warning
    assert "None" not in warning


def hold_the_organization_lock(holder: psycopg.Connection) -> str:
    holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                   (ORGANIZATION_LOCK_NAMESPACE, APPLICATION_ORGANIZATION))
    return f"the refresh lock of organization {APPLICATION_ORGANIZATION} held by another refresh (pid {{pid}})"


def hold_the_bookings_table(holder: psycopg.Connection) -> str:
    holder.execute("LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
    return "an ACCESS EXCLUSIVE lock on table bookings held by the application or another client (pid {pid}"


def hold_a_client_row(holder: psycopg.Connection) -> str:
    holder.execute("SELECT 1 FROM square_existing_clients WHERE square_customer_id = 'C1' FOR UPDATE")
    return "a row lock on table square_existing_clients held by the application or another client (pid {pid}"


@pytest.mark.parametrize("hold", [hold_the_organization_lock, hold_the_bookings_table, hold_a_client_row],
                         ids=["another refresh", "the application's table lock", "the application's row lock"])
def test_a_lock_timeout_names_who_held_the_lock(application_database, tmp_path, hold):
    env = {"DATABASE_URL": application_database, "CUSTOMER_ANALYTICS_LOCK_TIMEOUT_SECONDS": "1"}
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    # Another refresh is a session of the pipeline; the application's is not.
    application_name = APPLICATION_NAME if hold is hold_the_organization_lock else "booking-app"
    with psycopg.connect(application_database, application_name=application_name) as holder:
        expected = hold(holder).format(pid=holder.info.backend_pid)
        completed = run_cli("refresh", env=env, cwd=tmp_path)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    (line,) = [line for line in completed.stdout.splitlines() if "failed" in line]
    assert APPLICATION_ORGANIZATION in line and "lock timeout" in line and expected in line, line
    (payload,) = application_log_payloads(application_database)
    assert payload["status"] == "failure" and expected in payload["error"]



def relations_and_rows(database_url: str) -> tuple:
    """Every relation of the database's schemas (tables, views, sequences, indexes) and
    every row of its tables, as text."""
    with psycopg.connect(database_url) as conn:
        relations = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
            " ORDER BY 1, 2").fetchall()
        rows = {f"{schema}.{name}": conn.execute(
            f'SELECT t::text FROM "{schema}"."{name}" AS t ORDER BY 1').fetchall()
            for schema, name, kind in relations if kind == "r"}
    return relations, rows


STRANGERS = {
    "users with a row": "CREATE TABLE users (id int PRIMARY KEY, email text);"
                        " INSERT INTO users VALUES (1, 'someone@example.com')",
    "an empty payments table": "CREATE TABLE payments (id int)",
    "a view": "CREATE VIEW answers AS SELECT 42 AS answer",
}


@pytest.mark.parametrize("command, stranger", [
    ("demo", "users with a row"), ("demo", "an empty payments table"), ("demo", "a view"),
    ("ui", "users with a row"),
])
def test_development_commands_refuse_a_strangers_database(make_scratch_database, tmp_path, command, stranger):
    """A database with any table (or view) of someone else's, even one unrelated to the
    application's, is refused with exit 2 before the first write."""
    database_url = make_scratch_database()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in STRANGERS[stranger].split(";"):
            conn.execute(statement)
    before = relations_and_rows(database_url)
    env = {"DATABASE_URL": database_url, "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "DAGSTER_POSTGRES_URL": sqlalchemy_url(make_scratch_database())}
    completed = run_cli(command, "--organizations", "2", "--clients-per-org", "5", env=env, cwd=tmp_path)
    assert_one_line_failure(completed, 2, "refusing to use this database for demo data")
    assert relations_and_rows(database_url) == before
    assert not (tmp_path / "dagster_home").exists()


def test_ui_stops_every_process_on_sigterm_though_launched_with_sigint_ignored(make_scratch_database, tmp_path):
    """`customer-analytics ui &` in a script starts it with SIGINT ignored; SIGTERM still
    stops it and its webserver, daemon and code server, within seconds."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": make_scratch_database(), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "DAGSTER_POSTGRES_URL": sqlalchemy_url(make_scratch_database())}
    with open(tmp_path / "ui.log", "w") as log:
        ui = subprocess.Popen(
            with_signals_ignored([sys.executable, "-m", "customer_analytics_pipeline", "ui", "--port", str(port),
                                  "--organizations", "2", "--clients-per-org", "5"], [signal.SIGINT]),
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while not serves(f"http://127.0.0.1:{port}/server_info"):
            assert ui.poll() is None and time.monotonic() < deadline, (tmp_path / "ui.log").read_text()[-3000:]
            time.sleep(1)
        started = psutil.Process(ui.pid).children(recursive=True)
        assert len(started) >= 3, [p.cmdline() for p in started]  # dagster dev, webserver, daemon, code server
        stopping = time.monotonic()
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(started, timeout=max(0.0, stopping + 20 - time.monotonic()))
        assert alive == [], f"left running after SIGTERM: {[(p.pid, p.status()) for p in alive]}"
        assert time.monotonic() - stopping < 20
    finally:
        if ui.poll() is None:
            ui.kill()
        for process in started:
            with contextlib.suppress(psutil.Error):
                process.kill()
