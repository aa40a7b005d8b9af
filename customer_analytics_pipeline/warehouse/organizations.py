"""The application's organizations, as the pipeline keys them."""

import psycopg


def organization_keys(conn: psycopg.Connection) -> list[str]:
    """Every organizations.id as lowercase text, in a stable order."""
    return [row[0] for row in conn.execute("SELECT id::text FROM organizations ORDER BY id")]
