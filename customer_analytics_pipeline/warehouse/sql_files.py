"""Loads the project's SQL files: the SQL lives in ``sql/`` in files named after what
they compute (each folder's README says its conventions)."""

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"


@cache
def load_sql(relative_path: str) -> str:
    """Text of ``sql/<relative_path>``, read once per process."""
    return (SQL_DIR / relative_path).read_text(encoding="utf-8")


def sql_files_version(relative_paths: Sequence[str], extra: str = "") -> str:
    """A short hash of the files' text (and ``extra``): a code version that changes
    exactly when the SQL does."""
    digest = hashlib.sha256(extra.encode())
    for path in relative_paths:
        digest.update(path.encode() + b"\0" + load_sql(path).encode() + b"\0")
    return digest.hexdigest()[:16]
