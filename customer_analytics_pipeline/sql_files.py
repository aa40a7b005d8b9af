"""Loads the project's SQL files: the SQL lives in .sql files named after what they compute."""

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"


@cache
def load_sql(relative_path: str) -> str:
    """Text of ``sql/<relative_path>``, read once per process."""
    return (SQL_DIR / relative_path).read_text(encoding="utf-8")
