"""Phone masking for logs, CLI output and the report."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wch_bridge.masking import mask_phone, mask_phones_in_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+15551237890", "+1******7890"),
        ("15551237890", "15*****7890"),
        ("+1 555-123-7890", "+1******7890"),
        ("+44 (0) 7911.123456", "+4********3456"),
        ("1234567", "12*4567"),
        ("123456", "******"),
        ("", ""),
    ],
)
def test_mask_phone(value: str, expected: str) -> None:
    assert mask_phone(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +15551237890 now", "call +1******7890 now"),
        ("call +1 555-123-7890.", "call +1******7890."),
        ("to=15551237890,", "to=15*****7890,"),
        ('{"phone":"+919876543210"}', '{"phone":"+9*******3210"}'),
        ("two: +15551237890 and +447911123456", "two: +1******7890 and +4*******3456"),
        ("(+15551237890)", "(+1******7890)"),
    ],
)
def test_mask_phones_in_text(text: str, expected: str) -> None:
    assert mask_phones_in_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "short 5551234",  # 7 digits: too short
        "order 1234567",
        "md5 405a7dbc09554492b67e7b08ebbc7d6e",  # digits glued to letters
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "at 2026-11-29 01:58:01",  # dates and times
        "amount 1234567890.50",  # decimals
        "ip 192.168.100.200",
        "card 1234567890123456789",  # more than 15 digits: not a phone
        "path /v1/123456789012/messages",
        "job_id j12345678",
    ],
)
def test_not_phones(text: str) -> None:
    assert mask_phones_in_text(text) == text


@given(
    digits=st.text(alphabet="0123456789", min_size=8, max_size=15),
    plus=st.booleans(),
    before=st.sampled_from(["", " ", "phone=", '"', "(", "tel: "]),
    after=st.sampled_from(["", " ", ".", ",", '"', ")", " ok"]),
)
def test_every_phone_is_masked(digits: str, plus: bool, before: str, after: str) -> None:
    phone = ("+" if plus else "") + digits
    masked = mask_phones_in_text(f"{before}{phone}{after}")
    assert masked == f"{before}{mask_phone(phone)}{after}"
    assert re.search(r"\d{5,}", masked) is None
    assert masked.endswith(digits[-4:] + after)


@given(st.text(alphabet="0123456789 -+x", max_size=40))
def test_masking_is_idempotent_and_never_longer(text: str) -> None:
    masked = mask_phones_in_text(text)
    assert mask_phones_in_text(masked) == masked
    assert len(masked) <= len(text)


def test_the_kept_tail_of_a_masked_number_is_not_masked_again() -> None:
    """Found by the idempotence property: a 12-digit run followed by ``--0000`` is masked to ``00******0000--0000``;
    masking that again must change nothing (the kept ``0000`` after the stars is not the start of a new number)."""
    once = mask_phones_in_text("000000000000--0000")
    assert once == "00******0000--0000"
    assert mask_phones_in_text(once) == once


def test_the_kept_head_of_a_masked_number_is_not_masked_again() -> None:
    """Found by the idempotence property: ``0000000 000000000`` (16 digits, too long as one number) masks its
    9-digit tail to ``00***0000``; masking that again must not read ``0000000 00`` (the kept head) as a number."""
    once = mask_phones_in_text("0000000 000000000")
    assert once == "0000000 00***0000"
    assert mask_phones_in_text(once) == once
