"""Masks contact details before they reach check metadata or the run log."""

from collections.abc import Mapping
from typing import Any

def mask_email(email: str | None) -> str | None:
    """``jane.doe@example.com`` -> ``j***@example.com``."""
    if email is None:
        return None
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


def mask_phone(phone: str | None) -> str | None:
    """Keeps the last two digits only: ``+1 555 010 7788`` -> ``***88``."""
    if phone is None:
        return None
    digits = [character for character in phone if character.isdigit()]
    return "***" + "".join(digits[-2:])


def mask_contacts(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with email and phone masked (other values made JSON-friendly)."""
    masked = {key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value) for key, value in row.items()}
    if "email_address" in masked:
        masked["email_address"] = mask_email(row["email_address"])
    if "phone_number" in masked:
        masked["phone_number"] = mask_phone(row["phone_number"])
    return masked
