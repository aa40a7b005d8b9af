"""The operators' commands: ``migrate | refresh | check | code-server | webserver | daemon``.

On the application's database: ``migrate`` (the pipeline's schema and view),
``refresh`` (the asset's batch refresh, ``warehouse.batch_refresh``, outside Dagster)
and ``check`` (the eight checks as a table). ``code-server``, ``webserver`` and
``daemon`` are the production runbook's three processes (``serve``). Connections come
from the settings through the warehouse layer; nothing here imports Dagster.
"""

import argparse
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

from customer_analytics_pipeline.operations.serve import PortInUse, add_serve_commands, serve
from customer_analytics_pipeline.settings import DATABASE_URL_VARIABLE, Settings, load_settings
from customer_analytics_pipeline.warehouse.batch_refresh import refresh_batch
from customer_analytics_pipeline.warehouse.checks.evaluation import CheckOutcome, evaluate_checks
from customer_analytics_pipeline.warehouse.checks.outcomes import ERROR
from customer_analytics_pipeline.warehouse.citus import COLOCATE_WITH, source_tables_distributed
from customer_analytics_pipeline.warehouse.connection import Database, redact, server_label
from customer_analytics_pipeline.warehouse.errors import describe
from customer_analytics_pipeline.warehouse.migrations import (
    SchemaNotCurrent,
    apply_source_indexes,
    ensure_schema_current,
    migrate,
)
from customer_analytics_pipeline.warehouse.organizations import (
    labelled,
    listed,
    missing_organizations,
    organization_keys,
    organization_names,
)
from customer_analytics_pipeline.warehouse.refresh import (
    OrganizationsFailed,
    RefreshParameters,
    normalize_organization_ids,
    parse_as_of,
)
from customer_analytics_pipeline.warehouse.ticks import balanced_batches, organization_sizes, select_organizations_due

# Exit codes (docs/operations.md, Commands): 0 done; 1 a refresh or an ERROR check failed; 2
# refused before anything was written (a bad option or setting, an unknown organization,
# a schema that needs `migrate`, a database that is not the demo's, a port in use); 3 the
# database could not be used (unreachable, unknown, the role refused or lacking a privilege).
EXIT_FAILED, EXIT_REFUSED, EXIT_DATABASE = 1, 2, 3


class CommandError(Exception):
    """A failure the command reports as one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED):
        super().__init__(message)
        self.exit_code = exit_code


def say(message: str) -> None:
    print(message, flush=True)


def prepare_schema(database: Database, *, source_indexes: bool) -> None:
    """The pipeline's migrations and view, then the optional source indexes (only where
    asked: they are the application owners' to apply, and need ownership of its tables)."""
    with database.connect() as conn:
        for migration in migrate(conn):
            say(f"  applied migration {migration.version:04d}_{migration.name}")
        if source_tables_distributed(conn):
            say(f"  Citus: the pipeline's tables are distributed by organization_id, co-located with {COLOCATE_WITH}")
        if source_indexes:
            try:
                apply_source_indexes(conn)
            except psycopg.errors.InsufficientPrivilege as error:
                raise CommandError(
                    f"the optional source indexes need the owner of the application's tables: {describe(error)}",
                    EXIT_DATABASE,
                ) from error


def database_from_environment(settings: Settings) -> Database:
    """DATABASE_URL's database, or the embedded one, with the settings' session limits.
    Outside a Dagster run nothing resolves an EnvVar, so the command reads the variable
    itself (and never prints it)."""
    return Database(os.environ.get(DATABASE_URL_VARIABLE) or None, settings.embedded_data_dir,
                    settings.session_limits)


def database_in_use() -> str:
    """The database the commands use, for messages (never with its password)."""
    url = os.environ.get(DATABASE_URL_VARIABLE)
    if not url:  # (not load_settings(): this runs while reporting a failure, and must not fail)
        return f"embedded PostgreSQL in {os.environ.get('CUSTOMER_ANALYTICS_PGDATA') or Settings().embedded_data_dir}"
    try:
        return server_label(url)
    except ValueError:
        return DATABASE_URL_VARIABLE


def refuse_unknown_organizations(conn: psycopg.Connection, organization_ids: Sequence[str] | None) -> None:
    """Organizations asked for by id must exist: a refresh or check of nothing is no success."""
    missing = missing_organizations(conn, organization_ids) if organization_ids else []
    if missing:
        raise CommandError(f"unknown organization(s), no organizations row: {listed(missing)}; nothing was done")


def migrate_command(args: argparse.Namespace) -> None:
    database = database_from_environment(load_settings())
    try:
        prepare_schema(database, source_indexes=args.source_indexes)
    except psycopg.errors.InsufficientPrivilege as error:
        raise CommandError(
            "migrate must run as the owner of the pipeline's objects (docs/operations.md, Least privilege): "
            + describe(error),
            EXIT_DATABASE,
        ) from error
    say("pipeline schema and view are current" + (", optional source indexes in place" if args.source_indexes else ""))


def refresh_command(args: argparse.Namespace) -> int:
    """The asset's refresh (same function, same run history), outside Dagster: the given
    organizations, or every organization in batches as the schedules run them."""
    try:
        parameters = RefreshParameters(
            mode=args.mode,
            as_of=parse_as_of(args.as_of) if args.as_of else datetime.now(UTC),
            audit_every_row=args.audit_every_row,
        )
        organization_ids = normalize_organization_ids(args.organization) if args.organization else None
    except ValueError as error:
        say(f"error: {error}")
        return 2
    settings = load_settings()
    database = database_from_environment(settings)
    customers_per_run = args.customers_per_run or settings.customers_per_run
    with database.connect() as conn:
        ensure_schema_current(conn)
        refuse_unknown_organizations(conn, organization_ids)
        if organization_ids is None and parameters.mode == "recent":
            # The hourly tick's selection: the rest are proven current and recorded as verified.
            selection = select_organizations_due(conn, organization_keys(conn), parameters)
            organizations = list(selection.due)
            say(f"{len(organizations)} organization(s) to refresh, {selection.verified} verified unchanged")
        else:
            organizations = organization_sizes(conn, organization_ids or organization_keys(conn))
    say(f"refreshing {len(organizations)} organization(s), mode={parameters.mode}, "
        f"as_of={parameters.as_of.isoformat()}")
    succeeded = [refresh_one_batch(database, [o.organization_id for o in sized_batch], parameters, settings)
                 for sized_batch in balanced_batches(organizations, customers_per_run)]
    return 0 if all(succeeded) else EXIT_FAILED


def refresh_one_batch(
    database: Database, batch: list[str], parameters: RefreshParameters, settings: Settings
) -> bool:
    """One batch as the asset refreshes it (``batch_refresh``: run history, retention);
    a failure is one line naming its organizations and the cause. True when it committed."""
    try:
        refreshed = refresh_batch(
            database.connect, f"cli:{uuid.uuid4()}", batch, parameters, settings.segment_history_days,
            warn=lambda message: say(f"  {message}"),
        )
    except OrganizationsFailed as error:
        committed = error.refreshed.organizations if error.refreshed else []
        say(f"  {len(committed)} organization(s) refreshed; failed: " + "; ".join(map(str, error.failures)))
        return False
    except psycopg.Error as error:
        say(f"  {len(batch)} organization(s) failed, previous rows kept ({listed(batch)}): {describe(error)}")
        return False
    result = refreshed.result
    say(
        f"  {len(result.organizations)} organization(s): {result.total('row_count')} rows, "
        f"{result.total('rows_inserted')} inserted, {result.total('rows_updated')} updated, "
        f"{result.total('rows_deleted')} deleted in {result.duration_seconds:.1f}s"
        + (f"; {refreshed.expired_rows_deleted} change row(s) past {settings.segment_history_days} days deleted"
           if refreshed.expired_rows_deleted is not None else "")
    )
    return True


def check_table(outcomes: Sequence[CheckOutcome], organization_ids: Sequence[str], names: dict[str, str]) -> list[str]:
    """The eight checks per organization (id and name), one row each: ``ok``, or the
    severity and the number of failing rows (``!`` when the check could not evaluate)."""
    headers = ["organization", "name", *(f"{n}:{o.check_name}" for n, o in enumerate(outcomes, 1))]
    rows = []
    for organization_id in organization_ids:
        cells = [organization_id, names.get(organization_id, "")]
        for outcome in outcomes:
            failing = outcome.failures.rows_by_organization.get(organization_id, 0)
            if outcome.failures.error:
                cells.append(f"{outcome.severity} !")
            elif failing:
                cells.append(f"{outcome.severity} {failing}")
            else:
                cells.append("ok")
        rows.append(cells)
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]


def check_command(args: argparse.Namespace) -> int:
    """The eight checks, evaluated as the Dagster checks evaluate them, printed as a table
    per organization with the reasons below it; exit 1 when an ERROR check fails."""
    try:
        organization_ids = normalize_organization_ids(args.organization) if args.organization else None
    except ValueError as error:
        say(f"error: {error}")
        return 2
    with database_from_environment(load_settings()).connect() as conn:
        refuse_unknown_organizations(conn, organization_ids)
        organization_ids = organization_ids or organization_keys(conn)
        outcomes = evaluate_checks(conn, organization_ids)
        names = organization_names(conn, organization_ids)
    for line in check_table(outcomes, organization_ids, names):
        say(line)
    for outcome in outcomes:
        if outcome.failures.error:
            say(f"[{outcome.severity}] {outcome.check_name} could not evaluate: {outcome.failures.error}")
        for sample in outcome.failures.samples:
            customer = f", customer {sample['square_customer_id']}" if sample.get("square_customer_id") else ""
            say(f"[{outcome.severity}] {outcome.check_name}: organization "
                f"{labelled(sample.get('organization_id'), names)}"
                f"{customer}: {sample.get('problem')}")
    errors = [o.check_name for o in outcomes if not o.passed and o.severity == ERROR]
    say(f"{len(outcomes) - len(errors)}/{len(outcomes)} checks without an ERROR failure over "
        f"{len(organization_ids)} organization(s)" + (f"; failed: {', '.join(errors)}" if errors else ""))
    return 1 if errors else 0


def serve_command(args: argparse.Namespace) -> int:
    """``code-server``, ``webserver``, ``daemon``: becomes the Dagster process (see ``serve``)."""
    try:
        return serve(args)
    except PortInUse as error:
        raise CommandError(str(error), EXIT_REFUSED) from None


def add_operator_commands(commands: argparse._SubParsersAction) -> None:
    """``migrate``, ``refresh``, ``check`` and the runbook's processes, on ``commands``."""
    migrate_parser = commands.add_parser(
        "migrate", help="apply the pipeline's migrations to DATABASE_URL (or the embedded server)"
    )
    migrate_parser.add_argument(
        "--source-indexes", action="store_true",
        help="also build the optional indexes on the application's tables (CONCURRENTLY; needs their owner)",
    )
    migrate_parser.set_defaults(run=migrate_command)
    refresh_parser = commands.add_parser(
        "refresh", help="refresh customer_analytics (every organization, or those given) outside Dagster"
    )
    refresh_parser.add_argument("--mode", choices=("full", "recent"), default="full")
    refresh_parser.add_argument("--organization", action="append", metavar="ID", help="an organization id (repeatable)")
    refresh_parser.add_argument(
        "--as-of", help="ISO 8601 instant segments are relative to (default: now; no offset = UTC)"
    )
    refresh_parser.add_argument(
        "--customers-per-run", type=int,
        help="customers per transaction, as the schedules balance runs (default: CUSTOMER_ANALYTICS_CUSTOMERS_PER_RUN)",
    )
    refresh_parser.add_argument(
        "--audit-every-row", action="store_true",
        help="audit every row before commit, not only the rows written and a sample of the others",
    )
    refresh_parser.set_defaults(run=refresh_command)
    check_parser = commands.add_parser(
        "check", help="evaluate the eight checks over every row and print them per organization (the full audit)")
    check_parser.add_argument("--organization", action="append", metavar="ID", help="an organization id (repeatable)")
    check_parser.set_defaults(run=check_command)
    add_serve_commands(commands)
    for name in ("code-server", "webserver", "daemon"):
        commands.choices[name].set_defaults(run=serve_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customer-analytics", description=__doc__.split("\n\n")[0])
    add_operator_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run(args: argparse.Namespace) -> int:
    """Runs a parsed command: its exit code, every failure one line (README's exit codes)."""
    for option in ("batch_size", "customers_per_run"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            say(f"--{option.replace('_', '-')} must be at least 1")
            return 2
    try:
        return args.run(args) or 0
    except CommandError as error:
        failure, code = str(error), error.exit_code
    except (ValueError, SchemaNotCurrent) as error:  # a malformed setting (DATABASE_URL never with its password)
        failure, code = str(error), EXIT_REFUSED
    except psycopg.Error as error:  # unreachable, unknown database or role, a privilege, a lost connection
        failure, code = f"database {database_in_use()}: {describe(error)}", EXIT_DATABASE
    except Exception as error:  # noqa: BLE001 - a bug: still one line, never a traceback
        failure, code = f"{type(error).__name__}: {describe(error)}", EXIT_FAILED
    say(f"error: {redact(failure, os.environ.get(DATABASE_URL_VARIABLE) or '')}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The operators' commands alone (``python -m customer_analytics_pipeline.operations``)."""
    return run(build_parser().parse_args(argv))
