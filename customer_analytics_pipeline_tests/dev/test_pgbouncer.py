"""dev/pgbouncer.py: PgBouncer in front of the test server, as `ui` and the benchmarks
start it: connections go through it, LISTEN/NOTIFY works (session pooling), a closed
client connection leaves its server connection for the next one, and it stops with the
block. `.ci/run` installs pgbouncer; elsewhere the test is skipped when it is missing."""

import socket

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from customer_analytics_pipeline.dev.pgbouncer import PgBouncerUnavailable, pgbouncer_program, running_pgbouncer


@pytest.fixture(scope="module", autouse=True)
def installed():
    try:
        pgbouncer_program()
    except PgBouncerUnavailable as missing:
        pytest.skip(str(missing))


def backends(server_url: str, dbname: str) -> int:
    with psycopg.connect(server_url, autocommit=True) as admin:
        return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                             (dbname,)).fetchone()[0]


def test_connections_pool_through_pgbouncer_and_it_stops_with_the_block(scratch_database_url):
    dbname = conninfo_to_dict(scratch_database_url)["dbname"]
    with running_pgbouncer(scratch_database_url) as bouncer:
        url = bouncer.url()
        assert conninfo_to_dict(url)["dbname"] == dbname and conninfo_to_dict(url)["port"] == str(bouncer.port)
        for _ in range(20):  # what dagster-postgres does: a new connection per statement
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == (dbname,)
        assert backends(scratch_database_url, dbname) == 1  # one server connection served all twenty

        with psycopg.connect(url, autocommit=True) as listener, psycopg.connect(url, autocommit=True) as sender:
            listener.execute("LISTEN run_events")
            sender.execute("NOTIFY run_events, 'run-1'")
            notices = list(listener.notifies(timeout=5, stop_after=1))
        assert [notice.payload for notice in notices] == ["run-1"]
        port = bouncer.port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
