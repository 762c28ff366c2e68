"""One phone normalisation (wch_bridge.phones) for sending, keys, masking and display."""

from __future__ import annotations

import pytest

from wch_bridge import phones
from wch_bridge.errors import ApiError
from wch_bridge.masking import mask_phone, mask_phones_in_text
from wch_bridge.whatsapp import normalize_phone

ARABIC_INDIC = "".join(chr(0x660 + int(d)) for d in "16505551234")
EXT_ARABIC_INDIC = "".join(chr(0x6F0 + int(d)) for d in "16505551234")


@pytest.mark.parametrize("raw", [
    "+16505551234", "16505551234", "+1 (650) 555-1234", "+1.650.555.1234", "0016505551234", "+1 [650] 555 1234",
    "\uff0b\uff11\uff16\uff15\uff10\uff15\uff15\uff15\uff11\uff12\uff13\uff14",  # full-width
    "+1650555123\uff14", "+" + ARABIC_INDIC, EXT_ARABIC_INDIC, "+1\u2011650\u2013555\u22121234",
])
def test_every_spelling_of_one_number_is_one_ascii_e164(raw: str) -> None:
    assert phones.normalize(raw) == "+16505551234"
    assert normalize_phone(raw) == "+16505551234"


@pytest.mark.parametrize("raw", ["", "+", "1234567", "+0123456789", "+1234567890123456", "+1 650 CALL NOW",
                                 "+1777555123x", "abc", "+1777/5551234"])
def test_what_is_not_a_number_fails_with_a_reason_that_does_not_echo_it(raw: str) -> None:
    with pytest.raises(ApiError) as info:
        normalize_phone(raw)
    assert info.value.category == "recipient"
    assert "expected an international number" in str(info.value)
    digits = "".join(ch for ch in raw if ch.isdigit())
    assert len(digits) < 5 or digits not in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("call +1 (555) 123-4599 now", "call +1******4599 now"),
    ("to +1.555.123.4599.", "to +1******4599."),
    ("x +1555000123\uff16 y", "x +1******1236 y"),
    ("x +" + ARABIC_INDIC + " y", "x +1******1234 y"),
    ("Duplicate entry 'broadcast:c1:+15551234567' for key 'idempotency_key'",
     "Duplicate entry 'broadcast:c1:+1******4567' for key 'idempotency_key'"),
])
def test_masking_covers_formatted_and_unicode_numbers_and_ledger_keys(text: str, expected: str) -> None:
    assert mask_phones_in_text(text) == expected


def test_mask_phone_folds_digits_first() -> None:
    assert mask_phone("+1 (555) 123-4599") == "+1******4599"
    assert mask_phone("+" + ARABIC_INDIC) == "+1******1234"
