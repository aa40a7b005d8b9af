"""The application's organizations, as the pipeline keys them."""

from collections.abc import Sequence

import psycopg

# How many organization ids a one-line message lists before it says how many more.
LISTED_IN_A_LINE = 10


def organization_keys(conn: psycopg.Connection) -> list[str]:
    """Every organizations.id as lowercase text, in a stable order."""
    return [row[0] for row in conn.execute("SELECT id::text FROM organizations ORDER BY id")]


def missing_organizations(conn: psycopg.Connection, organization_ids: Sequence[str]) -> list[str]:
    """Those of ``organization_ids`` (UUID texts) without an organizations row, in their order."""
    known = {row[0] for row in conn.execute(
        "SELECT id::text FROM organizations WHERE id = ANY(%s::uuid[])", (list(organization_ids),))}
    return [organization_id for organization_id in organization_ids if organization_id not in known]


def organization_names(conn: psycopg.Connection, organization_ids: Sequence[str]) -> dict[str, str]:
    """``{id: organizations.name}`` of those that exist, for the messages naming them."""
    return dict(conn.execute(
        "SELECT id::text, name FROM organizations WHERE id = ANY(%s::uuid[])", (list(organization_ids),)).fetchall())


def listed(organization_ids: Sequence[str]) -> str:
    """The ids for a one-line message: the first few, then how many more."""
    shown = ", ".join(organization_ids[:LISTED_IN_A_LINE])
    more = len(organization_ids) - LISTED_IN_A_LINE
    return f"{shown} and {more} more" if more > 0 else shown
