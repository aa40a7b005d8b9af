"""``customer-analytics code-server | webserver | daemon``: the production runbook's three
long-running processes, each Dagster's own command run in place of this one (``exec``:
same pid, so a supervisor signals Dagster's process itself), after two guards Dagster
lacks.

- **SIGTERM stops it, whatever the launcher left.** A process started from a script
  with ``cmd &`` inherits SIGINT ignored, and Dagster's code server and daemon map
  SIGTERM to SIGINT's handler, so they then ignored SIGTERM too. Signal dispositions
  and the blocked-signal mask survive ``exec``; this command restores SIGINT and SIGTERM
  to their defaults and unblocks them first, so Dagster installs its own handlers.
- **One server per port.** gRPC binds with ``SO_REUSEPORT``, so a second code server on
  a taken port started, and clients reached either. A port anyone listens on is
  refused (exit 2) before Dagster starts.
"""

import argparse
import errno
import os
import signal
import socket
import sys

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CODE_LOCATION_MODULE = "customer_analytics_pipeline.definitions"
CODE_LOCATION_NAME = "customer_analytics_pipeline"


class PortInUse(Exception):
    """Someone already listens on the address."""


def refuse_taken_port(host: str, port: int) -> None:
    """PortInUse when ``host:port`` cannot be bound without ``SO_REUSEPORT`` (it fails
    even when the other socket set it: that is what keeps two servers apart)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is already in use (another server is running there)") from None
            raise


def restore_stop_signals() -> None:
    """SIGINT and SIGTERM back to their default action and unblocked, for the program
    this process becomes (Python then turns SIGINT into KeyboardInterrupt again)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def dagster_command(args: argparse.Namespace) -> list[str]:
    """The Dagster command line this one becomes (its Python: the same virtualenv)."""
    python = [sys.executable, "-m"]
    if args.process == "code-server":
        return [*python, "dagster", "code-server", "start", "-h", args.host, "-p", str(args.port),
                "-m", CODE_LOCATION_MODULE, "--location-name", CODE_LOCATION_NAME]
    if args.process == "webserver":
        return [*python, "dagster_webserver", "-w", args.workspace, "-h", args.host, "-p", str(args.port)]
    return [*python, "dagster._daemon", "run", "-w", args.workspace]


def serve(args: argparse.Namespace) -> int:
    """Becomes the Dagster process (never returns), or refuses a taken port (exit 2)."""
    if args.process != "daemon":
        refuse_taken_port(args.host, args.port)
    command = dagster_command(args)
    sys.stdout.flush()
    restore_stop_signals()
    os.execv(command[0], command)
    return 0  # not reached


def add_serve_commands(commands) -> None:
    """The three subcommands, on the command line's subparsers."""
    code_server = commands.add_parser("code-server", help="production: the code server (dagster code-server start)")
    code_server.add_argument("--host", "-H", default="127.0.0.1")
    code_server.add_argument("--port", "-p", type=int, default=4000)
    webserver = commands.add_parser("webserver", help="production: dagster-webserver on a workspace file")
    webserver.add_argument("--workspace", "-w", required=True)
    webserver.add_argument("--host", "-H", default="127.0.0.1")
    webserver.add_argument("--port", "-p", type=int, default=3000)
    daemon = commands.add_parser("daemon", help="production: dagster-daemon run on a workspace file")
    daemon.add_argument("--workspace", "-w", required=True)
    for name, subparser in (("code-server", code_server), ("webserver", webserver), ("daemon", daemon)):
        subparser.set_defaults(process=name)
