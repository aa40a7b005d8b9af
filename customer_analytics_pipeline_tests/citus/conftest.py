"""Fixtures of the Citus tests: scratch databases on the cluster of
CUSTOMER_ANALYTICS_CITUS_URL (created on every node, dropped afterwards) and a twin of
the same generated data on plain PostgreSQL, so every result can be compared with the
same run there cell for cell."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from customer_analytics_pipeline.dev.demo.synthetic_data import generate
from customer_analytics_pipeline.warehouse.citus import distribute_source_tables
from customer_analytics_pipeline.warehouse.migrations import apply_source_indexes, create_source_tables, migrate
from customer_analytics_pipeline_tests.citus_cluster import citus_url, create_citus_database, drop_citus_database
from customer_analytics_pipeline_tests.conftest import create_scratch_database, documented_runtime_grants
from customer_analytics_pipeline_tests.helpers import GENERATED


@pytest.fixture(scope="session")
def citus_server_url() -> str:
    return citus_url()


@pytest.fixture
def make_citus_database(citus_server_url) -> Iterator[Callable[[], str]]:
    """Empty databases on the cluster (the extension in each, workers registered)."""
    names = []

    def make() -> str:
        name = f"ca_citus_{uuid.uuid4().hex[:12]}"
        names.append(name)
        return create_citus_database(citus_server_url, name, create_scratch_database)

    yield make
    for name in names:
        drop_citus_database(citus_server_url, name)


def prepare_citus_database(url: str) -> None:
    """The application's tables created and distributed as docs/citus.md says, the
    optional indexes, then the pipeline's `migrate`."""
    with psycopg.connect(url, autocommit=True) as conn:
        create_source_tables(conn)
        distribute_source_tables(conn)
        apply_source_indexes(conn)
        migrate(conn)


@pytest.fixture
def citus_database_url(make_citus_database) -> str:
    url = make_citus_database()
    prepare_citus_database(url)
    return url


@dataclass
class Twin:
    """The same data on Citus and on plain PostgreSQL."""

    citus: psycopg.Connection
    postgres: psycopg.Connection

    def both(self, statement, params=None) -> None:
        """Runs one statement on both, in a transaction each."""
        for conn in (self.citus, self.postgres):
            with conn.transaction():
                conn.execute(statement, params)


@pytest.fixture
def twin(citus_database_url, make_scratch_database) -> Iterator[Twin]:
    postgres_url = make_scratch_database()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        create_source_tables(conn)
        apply_source_indexes(conn)
        migrate(conn)
    with (psycopg.connect(citus_database_url, autocommit=True) as citus,
          psycopg.connect(postgres_url, autocommit=True) as postgres):
        for conn in (citus, postgres):
            generate(conn, GENERATED, progress=lambda message: None)
        yield Twin(citus, postgres)


@pytest.fixture
def make_citus_role_for(citus_server_url) -> Iterator[Callable[[str], str]]:
    """A LOGIN role with exactly the documented runtime grants in a Citus database (Citus
    propagates the role and the grants to the workers); its URL. Dropped after the test."""
    roles = []

    def make(database_url: str) -> str:
        role = f"ca_role_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            roles.append((role, database_url))
            for statement in documented_runtime_grants(role):
                admin.execute(statement)
        return psycopg.conninfo.make_conninfo(database_url, user=role)

    yield make
    for role, database_url in roles:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def make_citus_role(citus_database_url, make_citus_role_for) -> Callable[[], str]:
    return lambda: make_citus_role_for(citus_database_url)


@pytest.fixture
def citus_generated(citus_database_url) -> Iterator[psycopg.Connection]:
    """A connection to the Citus database with the generator's data."""
    with psycopg.connect(citus_database_url, autocommit=True) as conn:
        generate(conn, GENERATED, progress=lambda message: None)
        yield conn
