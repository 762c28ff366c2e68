"""When to take more work, with no database (benchmarks/ANALYSIS.md): the pool is refilled when at least half
of it is free (a take has a fixed cost, so taking for a handful of free threads wastes it), results of a burst
are gathered for a moment (``LINGER_S``) and written with the next take, and no outcome waits longer than
``MAX_HOLD_S`` to be written. Also how long to wait when there is nothing to take, and when ``--once`` or
``--max-actions`` is done."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from wch_bridge.settings import Settings

T = TypeVar("T")

#: After the first result of a burst, wait this long for the rest before writing (fast actions finish together).
LINGER_S = 0.002
#: An outcome waits at most this long to be written while the pool is busy (batching never delays it more).
MAX_HOLD_S = 0.05
#: When others took the candidates a take read, try again after this long.
RETRY_SOON_S = 0.05


class AfterTake(Enum):
    DRAIN = "drain"  # the take was full: more may be due, take again at once
    RETRY_SOON = "retry_soon"  # candidates were read but others took them all
    SETTLE = "settle"  # fewer than asked were due: write, then wait


@dataclass(frozen=True)
class RefillPolicy:
    concurrency: int
    batch_size: int
    poll_interval: float
    max_actions: int | None = None
    once: bool = False

    @classmethod
    def from_settings(cls, s: Settings) -> RefillPolicy:
        return cls(s.concurrency, s.batch_size, s.poll_interval, s.max_actions, s.once)

    @property
    def low_water(self) -> int:
        """Refill once this many threads are free (half the pool, or half a batch when batches are smaller)."""
        return max(1, min(self.batch_size, self.concurrency) // 2)

    def busy(self, inflight: int, unwritten: int) -> int:
        """Actions a pool thread is running now (taken, not finished)."""
        return inflight - unwritten

    def free(self, inflight: int, unwritten: int) -> int:
        """Pool threads not running an action (finished ones count as free even before they are written)."""
        return self.concurrency - self.busy(inflight, unwritten)

    def room(self, inflight: int, unwritten: int, taken_total: int) -> int:
        """Free threads, capped by what ``--max-actions`` still allows."""
        free = self.free(inflight, unwritten)
        if self.max_actions is not None:
            free = min(free, self.max_actions - taken_total)
        return free

    def hold_for(self, busy: int, room: int, oldest_unwritten: float | None, now: float) -> float:
        """Seconds to keep collecting results before the next write+take (0: go now). While actions run and fewer
        than half the pool's threads are free, taking now would start a handful of actions for the fixed cost of
        a whole batch; but no outcome waits longer than ``MAX_HOLD_S`` (``oldest_unwritten``: when the oldest
        finished result not yet written finished, monotonic)."""
        if busy <= 0 or room >= self.low_water:
            return 0.0
        if oldest_unwritten is None:
            return self.poll_interval  # a finishing action wakes us
        return max(0.0, MAX_HOLD_S - (now - oldest_unwritten))

    def take_limit(self, room: int) -> int:
        return min(room, self.batch_size)

    @staticmethod
    def after_take(limit: int, got: int, seen: int) -> AfterTake:
        if got and seen == limit:
            return AfterTake.DRAIN
        if seen and not got:
            return AfterTake.RETRY_SOON
        return AfterTake.SETTLE

    def finished(self, taken_total: int, inflight: int, seen: int) -> bool:
        """``--max-actions`` reached and all written, or ``--once`` with nothing running and nothing due."""
        if self.max_actions is not None and taken_total >= self.max_actions and not inflight:
            return True
        return self.once and not inflight and seen == 0

    def wait(self, limit: int, seen: int, until_next_due: Callable[[], float]) -> float:
        """Seconds to wait for results before the next turn: at capacity, a finishing action wakes us; when fewer
        were due than asked, until the next is due (``until_next_due``); else go on at once."""
        if limit <= 0:
            return self.poll_interval
        if seen < limit:
            return until_next_due()
        return 0.0

    def next_due_wait(self, seconds_until_due: float | None) -> float:
        """The poll interval, or less when the next action is due sooner (``seconds_until_due``, real time)."""
        if seconds_until_due is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, seconds_until_due + 0.001))


def collect(results: queue.Queue[T], into: list[T], block_for: float, lingering: Callable[[], bool]) -> None:
    """Move finished results to ``into``. Waits up to ``block_for`` for the first one, then up to ``LINGER_S``
    for the rest of a burst while ``lingering()`` (fewer than half the pool's threads free)."""
    try:
        if block_for > 0:
            into.append(results.get(timeout=block_for))
            deadline = time.monotonic() + LINGER_S
            while lingering():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                into.append(results.get(timeout=left))
        while True:
            into.append(results.get_nowait())
    except queue.Empty:
        pass
