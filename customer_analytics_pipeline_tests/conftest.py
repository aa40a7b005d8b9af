"""Fixtures: a real PostgreSQL (DATABASE_URL's server, else an embedded one) and a
scratch database per test that is dropped afterwards."""

import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, instance_for_test
from dagster._core.storage.defs_state.base import set_defs_state_storage
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_analytics_pipeline.dev.demo.synthetic_data import generate
from customer_analytics_pipeline.settings import ENVIRONMENT_PREFIX, Settings, load_settings
from customer_analytics_pipeline.warehouse.connection import embedded_database_url
from customer_analytics_pipeline.warehouse.migrations import (
    apply_migrations,
    apply_source_indexes,
    create_source_tables,
    migrate,
)
from customer_analytics_pipeline.warehouse.views import ensure_view
from customer_analytics_pipeline_tests.helpers import GENERATED, anchor, refresh


@pytest.fixture(autouse=True)
def no_definitions_state_from_another_test():
    """Each test starts without a definitions-state store. Entering a DagsterInstance
    sets one for the context and disposing the instance does not unset it, so a test
    that closed its instance left the next one loading definitions through a dead weak
    reference ("Attempted to resolve undefined DagsterInstance weakref")."""
    with set_defs_state_storage(None):
        yield


@pytest.fixture
def settings_from_environment(monkeypatch) -> Callable[[dict[str, str]], Settings]:
    """``load_settings()`` on a process environment whose project variables are exactly
    the given ones (the test's own; restored afterwards)."""

    def load(variables: dict[str, str]) -> Settings:
        for name in [n for n in os.environ if n.startswith(ENVIRONMENT_PREFIX)]:
            monkeypatch.delenv(name)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return load


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """The PostgreSQL server the tests use: DATABASE_URL's, or an embedded one."""
    return os.environ.get("DATABASE_URL") or embedded_database_url(str(tmp_path_factory.mktemp("pgdata")))


def create_scratch_database(admin: psycopg.Connection, name: str) -> None:
    """Creates the database with a linguistic (ICU en-US) default collation where the
    server supports it (PostgreSQL 15+ built with ICU): there 'B' sorts after 'a', so a
    tie broken in locale order instead of byte order shows up as a wrong cell. Other
    servers (the embedded one has no ICU) get their default collation."""
    identifier = sql.Identifier(name)
    if admin.info.server_version >= 150000:
        try:
            admin.execute(sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'"
                " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            ).format(identifier))
            return
        except psycopg.errors.FeatureNotSupported:
            pass
    admin.execute(sql.SQL("CREATE DATABASE {}").format(identifier))


@pytest.fixture
def make_scratch_database(server_url) -> Iterator[Callable[[], str]]:
    """Creates new, empty databases on the server on demand; drops them (connections
    and all) after the test."""
    names = []

    def make() -> str:
        name = f"ca_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            create_scratch_database(admin, name)
        names.append(name)
        return make_conninfo(**{**conninfo_to_dict(server_url), "dbname": name})

    yield make
    with psycopg.connect(server_url, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def scratch_database_url(make_scratch_database) -> str:
    """A new, empty database on the server, dropped after the test."""
    return make_scratch_database()


@pytest.fixture
def database_url(scratch_database_url) -> str:
    """A scratch database with the source tables, the optional indexes and the pipeline's schema."""
    with psycopg.connect(scratch_database_url, autocommit=True) as conn:
        create_source_tables(conn)
        apply_source_indexes(conn)
        apply_migrations(conn)
    return scratch_database_url


@pytest.fixture
def conn(database_url) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def generated(conn) -> psycopg.Connection:
    """``conn`` with the generator's data (helpers.GENERATED) loaded."""
    counts = generate(conn, GENERATED, progress=lambda message: None)
    assert counts["bookings"] > 0
    return conn


@pytest.fixture
def refreshed(generated) -> psycopg.Connection:
    """``generated``, refreshed in full at the generator's anchor, with the view installed."""
    refresh(generated, "full", anchor(generated))
    ensure_view(generated)
    return generated


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A throwaway Dagster instance that schedules and sensors can load by reference."""
    with instance_for_test() as test_instance:
        yield test_instance


OPERATIONS_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def documented_runtime_grants(role: str) -> list[str]:
    """The operations guide's GRANT statements for the runtime role (section "Least
    privilege"), for ``role``."""
    text = OPERATIONS_GUIDE.read_text(encoding="utf-8").split("### Least privilege", 1)[1]
    block = text.split("```sql", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";") if s.strip()]
    return [s.replace("analytics_runtime", role) for s in statements if not s.startswith("CREATE ROLE")]


@pytest.fixture
def make_role(server_url) -> Iterator[Callable[..., str]]:
    """Creates LOGIN roles on the server on demand, granted the documented runtime grants
    (optionally minus some) in a scratch database; returns that database's URL as the
    role. Roles are server-wide, so they are dropped after the test."""
    created: list[tuple[str, str]] = []

    def make(database_url: str, without: Sequence[str] = ()) -> str:
        role = f"ca_role_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(database_url, autocommit=True) as admin:
            migrate(admin)  # as `customer-analytics migrate` leaves it: the view exists too
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            created.append((role, database_url))
            for statement in documented_runtime_grants(role):
                for table in without:
                    statement = re.sub(rf"\b{table},\s*", "", statement)
                admin.execute(statement)
        return make_conninfo(database_url, user=role)

    yield make
    for role, database_url in created:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
