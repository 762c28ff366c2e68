"""Masking phone numbers before they reach a log line, CLI output or the report (``+1******7890``)."""

from __future__ import annotations

import re

__all__ = ["PHONE_RE", "mask_phone", "mask_phones_in_text"]

#: E.164-ish: optional ``+``, 8 to 15 digits, single spaces or dashes allowed between digits. Not matched:
#: digits glued to letters or longer digit runs (hashes, ids), ISO dates, decimals, times, path/URL segments.
PHONE_RE = re.compile(
    r"(?<![\w+.:/-])"  # not inside a word, number, time or path
    r"(?!\d{4}-\d\d-\d\d(?!\d))"  # not an ISO date
    r"\+?\d(?:[ -]?\d){7,14}"
    r"(?!\w)(?![.,:/-]\d)"  # not followed by more digits of the same token
)

_SEPARATORS = re.compile(r"[\s().-]")


def mask_phone(value: str) -> str:
    """Keep the first 2 and last 4 characters: ``+15551237890`` -> ``+1******7890``.

    Spaces, dashes, dots and parentheses are dropped first; values of 6 characters or fewer are fully masked."""
    compact = _SEPARATORS.sub("", value)
    if len(compact) <= 6:
        return "*" * len(compact)
    return compact[:2] + "*" * (len(compact) - 6) + compact[-4:]


def mask_phones_in_text(text: str) -> str:
    """Replace every phone-number-looking run in ``text`` with its masked form."""
    return PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
