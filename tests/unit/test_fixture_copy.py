"""The repository's copy of the PHP-written fixtures equals the workplace's originals (``../shared/fixtures``)."""

from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, SHARED_FIXTURES

NAMES = ("action-scheduler-real.sql", "log-messages.txt", "schedules.txt")


@pytest.mark.parametrize("name", NAMES)
def test_fixture_copy_is_verbatim(name: str) -> None:
    ours = FIXTURES / name
    assert ours.is_file(), f"{ours} is missing"
    original = SHARED_FIXTURES / name
    if not original.is_file():
        pytest.skip(f"{original} is not beside this checkout")
    assert ours.read_bytes() == original.read_bytes(), f"{name} differs from {original}"
