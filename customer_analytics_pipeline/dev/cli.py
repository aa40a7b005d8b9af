"""Command line: ``customer-analytics migrate | refresh | check | demo | ui | code-server | webserver | daemon``.

The operators' commands (``migrate``, ``refresh``, ``check`` and the runbook's three
processes) are ``operations.commands``; this adds the newcomers' ``demo`` and ``ui``, on
a database of their own (see ``demo_commands``), loaded only when asked for: the
operators' commands never import the demo generator or numpy.
"""

import argparse
import sys
from collections.abc import Sequence

from customer_analytics_pipeline.operations.commands import add_operator_commands, run


def run_demo_command(args: argparse.Namespace) -> int:
    """``demo`` and ``ui``: imported here, so only they load the demo generator."""
    from customer_analytics_pipeline.dev import demo_commands

    return demo_commands.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customer-analytics", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="load demo data and materialize customer_analytics for every organization (own database only)"
    )
    ui_parser = commands.add_parser(
        "ui", help="start the Dagster UI and daemon on demo data (own database only)"
    )
    for subparser in (demo_parser, ui_parser):
        subparser.add_argument("--organizations", type=int, default=12)
        subparser.add_argument("--clients-per-org", type=int, default=400)
        subparser.add_argument("--seed", type=int, default=42)
        subparser.add_argument("--reload", action="store_true", help="replace the demo's data (only the demo's)")
    demo_parser.add_argument("--mode", choices=("full", "recent"), default="full")
    demo_parser.add_argument("--batch-size", type=int, default=5, help="organizations per run")
    demo_parser.set_defaults(run=run_demo_command)
    ui_parser.add_argument("--host", default="127.0.0.1")
    ui_parser.add_argument("--port", type=int, default=3000)
    ui_parser.set_defaults(run=run_demo_command)
    add_operator_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
