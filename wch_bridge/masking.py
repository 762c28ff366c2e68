"""Masking phone numbers before they reach a log line, CLI output or the report (``+1******7890``).

Numbers are read with the bridge's one phone normalisation (``wch_bridge.phones``): Unicode digits count as
digits and formatted numbers (``+1 (555) 123-4599``, ``+44 7911.123456``) are masked whole."""

from __future__ import annotations

import re

from wch_bridge.phones import compact

__all__ = ["PHONE_RE", "mask_phone", "mask_phones_in_text"]

#: E.164-ish: optional ``+``, 8 to 15 digits (any script), with up to two separators between digits (spaces,
#: dashes, brackets; dots too after a ``+``). Not matched: digits glued to letters or longer digit runs (hashes,
#: ids), ISO dates, decimals, times, path/URL segments, dotted addresses. A ``+`` number may follow a colon
#: (ledger keys ``broadcast:c1:+1555...`` in database error messages). Digits right after a ``*`` are the kept tail
#: of a number masked already (``00******0000--0000``), digits right before ``***0000`` its kept head
#: (``0000000 00***0000``): neither is matched again, so masking twice changes nothing.
PHONE_RE = re.compile(
    r"(?:"
    r"(?<![\w+])\+\d(?:[ \t.()\-]{0,2}\d){7,14}"  # +1 (555) 123-4599, +44 7911.123456
    r"|"
    r"(?<![\w+.:/*-])(?!\d{4}-\d\d-\d\d(?!\d))\d(?:[ \t()\-]{0,2}\d){7,14}"  # 15551237890, (555) 123-4567
    r")"
    r"(?!\w)(?![.,:/-]\d)"  # not followed by more digits of the same token
    r"(?!\*+\d{4}(?!\d))"  # nor by the stars and kept tail of a masked number (these digits are its head)
)


def mask_phone(value: str) -> str:
    """Keep the first 2 and last 4 characters: ``+15551237890`` -> ``+1******7890``.

    Digits are folded to ASCII and spaces, dashes, dots and brackets dropped first; values of 6 characters or
    fewer are fully masked."""
    text = compact(value)
    if len(text) <= 6:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 6) + text[-4:]


def mask_phones_in_text(text: str) -> str:
    """Replace every phone-number-looking run in ``text`` with its masked form."""
    return PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
