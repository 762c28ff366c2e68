"""The throughput chart's intervals, fitted to where the data is: the smallest clock-aligned step at which the span
from the first finished action of the window to now fits in ``MAX_BUCKETS`` intervals (so 60 actions in the last
three minutes are drawn in 10-second intervals, not as one spike among 24 empty hours), and at least
``MIN_BUCKETS`` intervals drawn, so a burst still has a before. A window where nothing finished is drawn whole at
the coarsest step that fits it. Pure: the queries that use it are ``scope.finished``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: The steps the chart may use, in seconds: each divides a day, so every interval starts on a round clock time.
BUCKET_STEPS: tuple[int, ...] = (10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600)
#: At most this many intervals (plus the one holding ``now``).
MAX_BUCKETS = 30
#: At least this many intervals once anything finished.
MIN_BUCKETS = 12


def floor_to(when: datetime, step: int) -> datetime:
    """``when`` (naive UTC) rounded down to a multiple of ``step`` seconds since the epoch."""
    ts = int(when.replace(tzinfo=UTC).timestamp())
    return datetime.fromtimestamp(ts - ts % step, UTC).replace(tzinfo=None)


def _count(start: datetime, now: datetime, step: int) -> int:
    return int((floor_to(now, step) - start).total_seconds()) // step + 1


def fit_buckets(since: datetime, now: datetime, first: datetime | None) -> tuple[datetime, int, int]:
    """(start of the first interval, step in seconds, number of intervals) for a window ``since``..``now`` whose
    first finished action is ``first`` (None: nothing finished)."""
    if first is None:
        window = (now - since).total_seconds()
        step = next((s for s in BUCKET_STEPS if window / s <= MAX_BUCKETS), BUCKET_STEPS[-1])
        start = floor_to(since, step)
        return start, step, _count(start, now, step)
    step = BUCKET_STEPS[-1]
    for candidate in BUCKET_STEPS:
        if _count(floor_to(first, candidate), now, candidate) <= MAX_BUCKETS:
            step = candidate
            break
    start = min(floor_to(first, step), floor_to(now, step) - timedelta(seconds=(MIN_BUCKETS - 1) * step))
    start = max(start, floor_to(since, step))
    return start, step, _count(start, now, step)
