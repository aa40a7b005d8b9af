"""Masks personal data wherever check output leaves the database (docs/contract.md, The eight checks).

Check output reaches Dagster's event storage (metadata, run-log lines) and
application_logs, which are read by far more people than the application's tables, and
kept longer. So a value is masked by the name of the field that holds it, whatever the
check: names, emails, phones, and free text (booking notes, referral source, which can
hold health details or a referrer's name). Problem texts are built in SQL from
non-personal columns only (``sql/checks/README.md``), and database errors are described
without the parts that quote row values (``database_error_text``).
"""

from collections.abc import Mapping
from typing import Any

import psycopg

MASK = "***"


def mask_name(name: Any) -> str | None:
    """``Jane`` -> ``J***``."""
    if name is None:
        return None
    return f"{str(name)[:1]}{MASK}"


def mask_email(email: Any) -> str | None:
    """``jane.doe@smith-family.com`` -> ``j***@***.com``: a custom domain can name the person."""
    if email is None:
        return None
    local, at, domain = str(email).partition("@")
    top_level = domain.rpartition(".")[2] if "." in domain else ""
    return f"{local[:1]}{MASK}@{MASK}.{top_level}" if at and top_level else MASK


def mask_phone(phone: Any) -> str | None:
    """Keeps the last two digits only: ``+1 555 010 7788`` -> ``***88``."""
    if phone is None:
        return None
    digits = [character for character in str(phone) if character.isdigit()]
    return MASK + "".join(digits[-2:])


def mask_text(text: Any) -> str | None:
    """Free text keeps only its length: ``***(42 characters)``."""
    if text is None:
        return None
    return f"{MASK}({len(text)} characters)" if isinstance(text, str) else MASK


def mask_booking_notes(notes: Any) -> Any:
    """Structure only: each note's booking_id and start_at, its texts masked."""
    if notes is None:
        return None
    if not isinstance(notes, list):
        return MASK
    return [
        {
            "booking_id": note.get("booking_id"),
            "start_at": note.get("start_at"),
            "customer_note": mask_text(note.get("customer_note")),
            "seller_note": mask_text(note.get("seller_note")),
        }
        if isinstance(note, dict) else MASK
        for note in notes
    ]


PERSONAL_FIELDS = {
    "given_name": mask_name,
    "family_name": mask_name,
    "email_address": mask_email,
    "phone_number": mask_phone,
    "customer_note": mask_text,
    "seller_note": mask_text,
    "referral_source": mask_text,
    "booking_notes": mask_booking_notes,
}


def mask_personal_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with every personal field masked; other values as they are
    (callers hand over text and JSON values only)."""
    return {key: PERSONAL_FIELDS[key](value) if key in PERSONAL_FIELDS else value for key, value in row.items()}


def database_error_text(error: psycopg.Error) -> str:
    """What went wrong, without the DETAIL and CONTEXT lines that can quote row values
    (``Key (email_address)=(...)``). A data error (SQLSTATE class 22, or a value the
    client could not load) quotes the offending value even in its first line, so only
    its kind is kept."""
    kind = type(error).__name__ + (f" ({error.sqlstate})" if error.sqlstate else "")
    if isinstance(error, psycopg.DataError):
        return kind
    message = error.diag.message_primary or str(error).strip().split("\n", 1)[0]
    return f"{kind}: {message}" if message else kind
