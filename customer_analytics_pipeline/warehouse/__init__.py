"""The database layer: everything that talks to PostgreSQL, with plain psycopg and the
SQL files of ``sql/``, and no Dagster import (a test enforces it). The Dagster layer
(``defs``) and the command line (``dev``) build on it; it imports neither."""
