"""The one phone-number normalisation of the bridge, used for sending, ledger keys, masking and display.

``normalize(value)``: Unicode digits folded to ASCII (NFKC, then ``unicodedata.decimal`` for the digits NFKC
keeps, such as Arabic-Indic ``٠١٢``), spaces, dots, dashes and brackets dropped, a leading ``00`` read as ``+``;
the result must match ``^\\+?[1-9][0-9]{7,14}$`` and is returned as ``+`` and 8-15 ASCII digits. Anything else
raises :class:`InvalidPhone` (whose text never echoes the value)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["InvalidPhone", "PHONE_PATTERN", "compact", "fold_digits", "normalize"]

PHONE_PATTERN = re.compile(r"^\+?[1-9][0-9]{7,14}$")
#: What is dropped: white space, dots, dashes (ASCII and Unicode dashes, minus sign), round and square brackets.
_JUNK = re.compile(r"[\s.\-\u2010-\u2015\u2212()\[\]]")


class InvalidPhone(ValueError):
    """Not an international phone number (the message says why without repeating the number)."""


def fold_digits(value: str) -> str:
    """NFKC, then every remaining Unicode decimal digit as its ASCII digit (other characters unchanged)."""
    text = unicodedata.normalize("NFKC", value)
    out = []
    for ch in text:
        if not ch.isascii():
            d = unicodedata.decimal(ch, None)
            if d is not None:
                out.append(str(d))
                continue
        out.append(ch)
    return "".join(out)


def compact(value: object) -> str:
    """Digits folded to ASCII and separators dropped (no validation): the form masking and display start from."""
    return _JUNK.sub("", fold_digits(str(value if value is not None else "")).strip())


def normalize(value: object) -> str:
    """``+16505551234`` from ``16505551234``, ``+1 (650) 555-1234``, ``0016505551234``, ``＋１６５０５５５１２３４``..."""
    text = compact(value)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not PHONE_PATTERN.match(text):
        digits = sum(ch.isdigit() for ch in text)
        raise InvalidPhone(f"invalid recipient phone number ({digits} digits): expected an international number "
                           "of 8 to 15 digits like +16505551234")
    return text if text.startswith("+") else "+" + text
