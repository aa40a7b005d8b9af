"""The command line end to end in subprocesses, on scratch databases: README's demo, the
operators' commands, and the development commands refusing an application's database."""

import os
import subprocess
import sys
import zlib

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from customer_analytics_pipeline.dev.dagster_instance import sqlalchemy_url
from customer_analytics_pipeline.warehouse.migrations import create_source_tables

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
    assert ("organization 00000000-0000-4000-8000-00000000a002, customer C-OVERFLOW: bigint out of range"
            in completed.stdout)
    with psycopg.connect(application_database) as conn:  # the healthy organization committed
        assert conn.execute("SELECT total_accepted_bookings, total_no_shows FROM customer_analytics").fetchall() == [
            (0, 1)]
        (error,) = conn.execute(
            "SELECT payload->>'error' FROM application_logs WHERE payload->>'status' = 'failure'").fetchone()
        assert "C-OVERFLOW" in error


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
    assert header.split()[0] == "organization" and len(header.split()) == 9
    assert row.split() == ["00000000-0000-4000-8000-00000000a001"] + ["ok"] * 8

    with psycopg.connect(application_database, autocommit=True) as conn:
        conn.execute("UPDATE customer_analytics SET total_no_shows = -1, given_name = 'Zelda-Marker'")
    completed = run_cli("check", "--organization", "00000000-0000-4000-8000-00000000a001", env=env, cwd=tmp_path)
    assert completed.returncode == 1
    row = completed.stdout.splitlines()[1].split()
    assert row[1:] == ["ok", "ok", "ERROR", "1", "ok", "ok", "ok", "ok", "ok"]
    assert "sample_record_valid: organization 00000000-0000-4000-8000-00000000a001, customer C1" in completed.stdout
    assert "failed: sample_record_valid" in completed.stdout and "Zelda-Marker" not in completed.stdout
