"""Pure retry decisions (wch_bridge.retry)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wch_bridge import retry


def test_sync_delays_match_the_plugin() -> None:
    assert retry.SYNC_RETRY_DELAYS == (60, 300, 900)
    assert retry.SYNC_MAX_RETRIES == 3
    assert [retry.sync_retry_delay(n) for n in range(5)] == [60, 300, 900, None, None]


def test_sync_delay_treats_negative_count_as_first_retry() -> None:
    assert retry.sync_retry_delay(-1) == 60


def test_message_delays_then_give_up() -> None:
    assert retry.MESSAGE_MAX_ATTEMPTS == 5
    got = [retry.message_retry_delay(n) for n in range(1, 7)]
    assert got == [60, 300, 900, 3600, None, None]
    assert retry.message_retry_delay(0) == 60


def test_failed_send_delay_is_the_step_raised_to_retry_after() -> None:
    """The one "delay after a failed send" rule the broadcast, cart and retry handlers share."""
    assert [retry.failed_send_delay(n) for n in range(1, 7)] == [60, 300, 900, 3600, None, None]
    assert retry.failed_send_delay(1, 0.2) == 60  # a shorter Retry-After does not shorten the step
    assert retry.failed_send_delay(1, 90.1) == 91  # a longer one wins, rounded up to whole seconds
    assert retry.failed_send_delay(2, None) == 300
    assert retry.failed_send_delay(5, 30) is None  # attempts used up: give up, whatever Retry-After says


def test_failed_send_delay_when_attempts_are_used_up_but_a_retry_action_is_scheduled_anyway() -> None:
    assert retry.failed_send_delay(5, used_up=60) == 60
    assert retry.failed_send_delay(9, 120.5, used_up=60) == 121
    assert retry.failed_send_delay(1, used_up=60) == 60


def test_backoff_ceiling_doubles_then_caps() -> None:
    assert [retry.backoff_ceiling(a) for a in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry.backoff_ceiling(3, base=0.5, cap=10) == 2.0
    assert retry.backoff_ceiling(10_000) == 60.0  # no OverflowError


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    a = [retry.backoff_delay(n, rng=random.Random(7)) for n in range(1, 6)]
    b = [retry.backoff_delay(n, rng=random.Random(7)) for n in range(1, 6)]
    assert a == b


def test_backoff_rejects_negative_parameters() -> None:
    with pytest.raises(ValueError):
        retry.backoff_delay(1, base=-1)


@given(
    attempt=st.integers(min_value=-5, max_value=5000),
    base=st.floats(min_value=0, max_value=100),
    cap=st.floats(min_value=0, max_value=3600),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_within_full_jitter_bounds(attempt: int, base: float, cap: float, seed: int) -> None:
    delay = retry.backoff_delay(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0.0 <= delay <= retry.backoff_ceiling(attempt, base, cap) <= cap


def test_backoff_uses_the_whole_range() -> None:
    rng = random.Random(1)
    samples = [retry.backoff_delay(4, rng=rng) for _ in range(2000)]
    assert min(samples) < 1.0 and max(samples) > 7.0  # full jitter over [0, 8]
