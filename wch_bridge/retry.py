"""Pure retry decisions: queue-level delays (sync jobs, failed messages) and API back-off with jitter.

Nothing here sleeps or touches I/O; callers decide what to do with the numbers.
"""

from __future__ import annotations

import math
import random

#: ``WCH_Sync_Job_Handler::RETRY_DELAYS``: the delay before retry 1, 2 and 3 of ``hooks.SYNC_JOB``.
SYNC_RETRY_DELAYS: tuple[int, ...] = (60, 300, 900)
#: ``WCH_Sync_Job_Handler::MAX_RETRIES``: four runs in all (t, t+60, t+360, t+1260 s).
SYNC_MAX_RETRIES = len(SYNC_RETRY_DELAYS)

#: Delay before re-sending a failed WhatsApp message, indexed by the attempt that just failed (1-based).
MESSAGE_RETRY_DELAYS: tuple[int, ...] = (60, 300, 900, 3600)
#: Total number of send attempts for one message (the first send plus one retry per delay above).
MESSAGE_MAX_ATTEMPTS = len(MESSAGE_RETRY_DELAYS) + 1

# 2.0 ** 1023 is the largest power of two a float holds; far beyond any cap, so clamp the exponent early.
_MAX_EXPONENT = 64


def sync_retry_delay(retry_count: int) -> int | None:
    """Seconds until the next ``hooks.SYNC_JOB`` run, given the ``retry_count`` the failed run carried.

    ``0 -> 60``, ``1 -> 300``, ``2 -> 900``; ``3`` or more -> ``None`` (retries used up, store ``failed``).
    A negative count (junk args) is treated as 0, like the plugin's ``retry_count < 3`` test lets it through."""
    count = max(0, int(retry_count))
    if count >= SYNC_MAX_RETRIES:
        return None
    return SYNC_RETRY_DELAYS[count]


def message_retry_delay(attempt: int) -> int | None:
    """Seconds until the next send of a failed message, given how many attempts were made so far (1-based).

    ``1 -> 60``, ``2 -> 300``, ``3 -> 900``, ``4 -> 3600``; from ``MESSAGE_MAX_ATTEMPTS`` on -> ``None``
    (give up / dead-letter). Values below 1 count as 1."""
    n = max(1, int(attempt))
    if n >= MESSAGE_MAX_ATTEMPTS:
        return None
    return MESSAGE_RETRY_DELAYS[n - 1]


def failed_send_delay(attempt: int, retry_after: float | None = None, *, used_up: int | None = None) -> int | None:
    """The one rule for "when to send a message again after a failed send": the step of
    :func:`message_retry_delay` for the attempts made so far, raised to the server's ``Retry-After`` when it asked
    for longer (rounded up to whole seconds).

    Once the attempts are used up: ``None`` (give up), or ``used_up`` seconds (still raised to ``Retry-After``) for
    a caller that schedules the retry action anyway and lets that action give up."""
    delay = message_retry_delay(attempt)
    if delay is None:
        if used_up is None:
            return None
        delay = used_up
    if retry_after:
        delay = max(delay, int(math.ceil(retry_after)))
    return delay


def backoff_ceiling(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """The upper bound of :func:`backoff_delay` for ``attempt``: ``min(cap, base * 2 ** (attempt - 1))``."""
    if base < 0 or cap < 0:
        raise ValueError("base and cap must not be negative")
    exponent = min(max(1, int(attempt)) - 1, _MAX_EXPONENT)
    return min(cap, base * (2.0**exponent))


def backoff_delay(
    attempt: int, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Exponential back-off with full jitter: uniform in ``[0, min(cap, base * 2 ** (attempt - 1))]``.

    ``attempt`` is 1-based (the attempt that just failed); values below 1 count as 1. Pass a seeded
    ``random.Random`` for reproducible results."""
    ceiling = backoff_ceiling(attempt, base, cap)
    source = rng if rng is not None else random
    return source.uniform(0.0, ceiling)
