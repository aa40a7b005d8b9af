"""PgBouncer in front of Dagster's storage database, for ``customer-analytics ui`` and the
benchmarks (production runs Debian's pgbouncer service with README's configuration).

dagster-postgres opens a new PostgreSQL connection for every statement it runs (its
SQLAlchemy engines use NullPool), and a partition-range run writes hundreds of events, so
each run forks hundreds of PostgreSQL backends. PgBouncer keeps a few server connections
open and hands them out; a client connection to it costs no backend. Session pooling
keeps every PostgreSQL feature Dagster uses (LISTEN/NOTIFY, session settings).

``running_pgbouncer(server_url)`` writes a configuration into a temporary folder, starts
``pgbouncer`` (Debian package ``pgbouncer``; ``.ci/run`` installs it) on a free loopback
port, forwarding every database name to ``server_url``'s server as the URL's user, and
stops it on exit. It trusts connections from this machine only, like the servers it is
meant for here (the embedded one and CI's); README's production configuration
authenticates.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

PGBOUNCER_PROGRAM = "pgbouncer"
# Where Debian's package installs it (not on a non-root user's PATH there).
DEBIAN_PGBOUNCER = "/usr/sbin/pgbouncer"
# PgBouncer refuses to run as root; as root it runs as the owner of the server's Unix-socket
# folder (the embedded server, started by root, runs as a user of its own and only that
# user reaches its socket), else as this user (Debian's PostgreSQL packages create it), else
# as nobody.
UNPRIVILEGED_USERS = ("postgres", "nobody")
START_TIMEOUT_SECONDS = 10.0
# Enough server connections for the webserver, the daemon, the code server and the run
# workers of dagster.yaml's max_concurrent_runs at once; clients beyond wait their turn.
POOL_SIZE = 20
MAX_CLIENT_CONNECTIONS = 500


class PgBouncerUnavailable(RuntimeError):
    """The pgbouncer program is not installed here."""


def pgbouncer_program() -> str:
    """The pgbouncer executable, or PgBouncerUnavailable saying how to install it."""
    found = shutil.which(PGBOUNCER_PROGRAM) or (DEBIAN_PGBOUNCER if os.access(DEBIAN_PGBOUNCER, os.X_OK) else None)
    if not found:
        raise PgBouncerUnavailable("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    return found


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def quoted(value: str) -> str:
    """A value for pgbouncer's auth_file (double quotes, doubled inside)."""
    return '"' + value.replace('"', '""') + '"'


def pgbouncer_ini(server: dict[str, str], port: int, folder: Path) -> str:
    """The configuration: every database name forwarded to ``server`` (libpq parameters:
    host, port), session pooling, trust on the loopback port."""
    target = " ".join(f"{name}={server[name]}" for name in ("host", "port") if server.get(name))
    return "\n".join([
        "[databases]",
        f"* = {target}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {folder / 'userlist.txt'}",
        "pool_mode = session",
        f"default_pool_size = {POOL_SIZE}",
        f"max_client_conn = {MAX_CLIENT_CONNECTIONS}",
        "server_reset_query = DISCARD ALL",
        # psycopg sends these at connect; PgBouncer would refuse an unknown startup parameter.
        "ignore_startup_parameters = extra_float_digits,options",
        f"logfile = {folder / 'pgbouncer.log'}",
        f"pidfile = {folder / 'pgbouncer.pid'}",
        "",
    ])


@dataclass(frozen=True)
class PgBouncer:
    """A running pgbouncer: ``url(dbname)`` is a libpq URL of a database through it."""

    server_url: str
    port: int
    folder: Path

    def url(self, dbname: str | None = None) -> str:
        parameters = {key: value for key, value in conninfo_to_dict(self.server_url).items()
                      if key not in ("host", "hostaddr", "port")}
        if dbname:
            parameters["dbname"] = dbname
        return make_conninfo(**parameters, host="127.0.0.1", port=str(self.port))


def wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with status {process.returncode}: {tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{port} within {START_TIMEOUT_SECONDS:.0f} s: "
                       f"{tail(log)}")


def tail(log: Path) -> str:
    try:
        return " / ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    except OSError:
        return "(no log)"


@contextmanager
def running_pgbouncer(server_url: str, port: int | None = None) -> Iterator[PgBouncer]:
    """pgbouncer on 127.0.0.1:``port`` (a free one when None) in front of ``server_url``'s
    server, until the block ends; PgBouncerUnavailable when it is not installed."""
    program = pgbouncer_program()
    server = conninfo_to_dict(server_url)
    port = port or free_loopback_port()
    with tempfile.TemporaryDirectory(prefix="customer-analytics-pgbouncer-") as directory:
        folder = Path(directory)
        user = server.get("user") or "postgres"
        (folder / "userlist.txt").write_text(f"{quoted(user)} {quoted(server.get('password') or '')}\n")
        (folder / "pgbouncer.ini").write_text(pgbouncer_ini(server, port, folder))
        command = [program, "-q", str(folder / "pgbouncer.ini")]
        if os.geteuid() == 0:
            command[1:1] = ["-u", unprivileged_user(folder, server.get("host"))]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until_listening(process, port, folder / "pgbouncer.log")
            yield PgBouncer(server_url, port, folder)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # a safe shutdown: waits for clients to leave
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def socket_folder_owner(host: str | None) -> str | None:
    """The owner of ``host`` when it is a Unix-socket folder owned by someone but root."""
    import pwd

    if not host or not host.startswith("/"):
        return None
    try:
        owner = os.stat(host).st_uid
        return pwd.getpwuid(owner).pw_name if owner != 0 else None
    except (OSError, KeyError):
        return None


def unprivileged_user(folder: Path, server_host: str | None = None) -> str:
    """The user pgbouncer runs as when started by root: one that can reach the server
    (UNPRIVILEGED_USERS); the folder becomes theirs (it writes its log and pid there; the
    auth file stays readable by that user only)."""
    import pwd

    for name in filter(None, (socket_folder_owner(server_host), *UNPRIVILEGED_USERS)):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        for path in (folder, *folder.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return name
    raise RuntimeError("pgbouncer does not run as root and no unprivileged user was found")
