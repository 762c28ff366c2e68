"""Action Scheduler schedules as plain values, and how AS computes the next run (reference section 3).

Pure: no I/O. Timestamps are integer Unix seconds (UTC); ``scheduled_at()`` returns naive UTC datetimes.
Cron expressions follow the AS-bundled ``CronExpression`` library (mtdowling 1.x): evaluated in UTC at minute
resolution, day-of-month AND day-of-week must both match, ``*/N`` in day-of-month/month means "value % N == 0",
and an optional sixth field is the year. The five standard fields are matched with croniter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from croniter import CroniterError, croniter

from wch_bridge.errors import ScheduleFormatError

__all__ = [
    "CRON_ALIASES",
    "CronSchedule",
    "IntervalSchedule",
    "NullSchedule",
    "Schedule",
    "SimpleSchedule",
    "cron_first",
    "cron_next_run",
    "interval_first",
    "next_instance",
    "normalize_cron",
    "php_intval",
]

#: ``CronExpression::factory`` mappings, applied before a cron schedule is stored.
CRON_ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_YEAR_SCAN_LIMIT = 1000  # years to look ahead for a matching year field (PHP gives up after 1000 steps too)


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def php_intval(value: int | str) -> int:
    """PHP's ``(int)`` cast of an interval given as int or numeric string (``"3600"``, ``" 90"``, ``"1e3"``)."""
    if isinstance(value, int):
        return value
    m = re.match(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)", value)
    if not m:
        return 0
    text = m.group(1)
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        return int(float(text))
    except (OverflowError, ValueError):
        return 0


def normalize_cron(expression: str) -> str:
    """Expand an ``@alias``, split on whitespace and re-join with single spaces; 5 or 6 parts required."""
    text = CRON_ALIASES.get(expression.strip(), expression)
    parts = text.split()
    if not 5 <= len(parts) <= 6:
        raise ScheduleFormatError(f"{expression!r} is not a valid CRON expression (need 5 or 6 fields)")
    return " ".join(parts)


@dataclass(frozen=True)
class SimpleSchedule:
    """``ActionScheduler_SimpleSchedule``: one run at ``timestamp``."""

    timestamp: int

    @property
    def is_recurring(self) -> bool:
        return False

    @property
    def scheduled_timestamp(self) -> int:
        return self.timestamp

    def scheduled_at(self) -> datetime:
        return _utc(self.timestamp)


@dataclass(frozen=True)
class IntervalSchedule:
    """``ActionScheduler_IntervalSchedule``; ``recurrence`` is kept exactly as PHP stored it (int or str)."""

    scheduled_timestamp: int
    first_timestamp: int
    recurrence: int | str

    def __post_init__(self) -> None:
        if isinstance(self.recurrence, bool) or not isinstance(self.recurrence, int | str):
            raise TypeError(f"interval recurrence must be int or str, got {type(self.recurrence).__name__}")

    @property
    def is_recurring(self) -> bool:
        return True

    @property
    def interval_seconds(self) -> int:
        return php_intval(self.recurrence)

    def scheduled_at(self) -> datetime:
        return _utc(self.scheduled_timestamp)


@dataclass(frozen=True)
class CronSchedule:
    """``ActionScheduler_CronSchedule``; ``expression`` is normalized (aliases expanded, single spaces)."""

    scheduled_timestamp: int
    first_timestamp: int
    expression: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "expression", normalize_cron(self.expression))

    @property
    def is_recurring(self) -> bool:
        return True

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.expression.split(" "))

    def scheduled_at(self) -> datetime:
        return _utc(self.scheduled_timestamp)


@dataclass(frozen=True)
class NullSchedule:
    """``ActionScheduler_NullSchedule`` (async actions): no date inside."""

    @property
    def is_recurring(self) -> bool:
        return False

    @property
    def scheduled_timestamp(self) -> None:
        return None

    def scheduled_at(self) -> None:
        return None


Schedule = SimpleSchedule | IntervalSchedule | CronSchedule | NullSchedule


# --- cron evaluation -------------------------------------------------------------------------------------


def _divisible(part: str, low: int, high: int) -> str | None:
    """``*/N`` or ``0/N`` -> explicit list of values with value % N == 0 (mtdowling 1.x semantics)."""
    m = re.fullmatch(r"(?:\*|0)/(\d+)", part)
    if not m:
        return None
    step = int(m.group(1))
    if step == 0:
        raise ScheduleFormatError(f"invalid CRON step {part!r}")
    values = [str(v) for v in range(low, high + 1) if v % step == 0]
    if not values:
        raise ScheduleFormatError(f"Impossible CRON expression: {part!r} never matches")
    return ",".join(values)


def _croniter_expr(parts: list[str]) -> str:
    """Translate the five standard fields of a PHP expression into croniter syntax."""
    out: list[str] = []
    for pos, field in enumerate(parts[:5]):
        items: list[str] = []
        for raw in field.split(","):
            item = raw.strip()
            if item == "?":
                item = "*"
            elif pos in (2, 3):
                item = _divisible(item, 1, 31 if pos == 2 else 12) or item
            elif pos == 4:
                m = re.fullmatch(r"([0-7])L", item)
                if m:
                    item = "L" + ("0" if m.group(1) == "7" else m.group(1))
            items.append(item)
        out.append(",".join(items))
    return " ".join(out)


def _year_item_matches(year: int, item: str) -> bool:
    item = item.strip()
    if item in ("*", "?"):
        return True
    try:
        if "/" in item:
            base, _, step_text = item.partition("/")
            step = int(step_text)
            if step <= 0:
                return False
            if base in ("*", "0"):
                return year % step == 0
            low_text, _, high_text = base.partition("-")
            low, high = int(low_text), int(high_text) if high_text else year
            return low <= year <= high and (year - low) % step == 0
        if "-" in item:
            low_text, _, high_text = item.partition("-")
            return int(low_text) <= year <= int(high_text)
        return year == int(item)
    except ValueError as exc:
        raise ScheduleFormatError(f"invalid CRON year field {item!r}") from exc


def _year_matches(year: int, field: str | None) -> bool:
    return field is None or any(_year_item_matches(year, item) for item in field.split(","))


def cron_next_run(expression: str, ts: int, *, allow_current: bool = False) -> int:
    """``CronExpression::getNextRunDate(ts, 0, allow_current)`` in UTC.

    Seconds of ``ts`` are dropped first; the result is the first match after that minute (or at it, when
    ``allow_current``)."""
    parts = normalize_cron(expression).split(" ")
    year_field = parts[5] if len(parts) == 6 else None
    minute = ts - ts % 60
    start = minute - 1 if allow_current else minute
    try:
        expr5 = _croniter_expr(parts)
        for _ in range(_YEAR_SCAN_LIMIT):
            itr = croniter(expr5, datetime.fromtimestamp(start, UTC), day_or=False)
            found: datetime = itr.get_next(datetime)
            if _year_matches(found.year, year_field):
                return int(found.timestamp())
            year = found.year + 1
            while not _year_matches(year, year_field):
                year += 1
                if year > found.year + _YEAR_SCAN_LIMIT:
                    raise ScheduleFormatError(f"Impossible CRON expression {expression!r}")
            start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) - 1
    except (CroniterError, ValueError, KeyError, OverflowError) as exc:
        raise ScheduleFormatError(f"cannot evaluate CRON expression {expression!r}: {exc}") from exc
    raise ScheduleFormatError(f"Impossible CRON expression {expression!r}")


# --- creating and repeating ------------------------------------------------------------------------------


def cron_first(expression: str, when_ts: int) -> CronSchedule:
    """The schedule ``as_schedule_cron_action(when, expression)`` stores.

    ``first_timestamp`` is ``when`` with its seconds cut off (the cron library truncates the DateTime it is
    given) and the run date is the first match at or after that minute."""
    normalized = normalize_cron(expression)
    first = when_ts - when_ts % 60
    return CronSchedule(cron_next_run(normalized, when_ts, allow_current=True), first, normalized)


def interval_first(when_ts: int, interval: int | str) -> IntervalSchedule:
    """The schedule ``as_schedule_recurring_action(when, interval)`` stores (interval kept as given)."""
    if php_intval(interval) <= 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    return IntervalSchedule(when_ts, when_ts, interval)


def next_instance(schedule: Schedule, now_ts: int) -> Schedule:
    """The schedule of the instance ``ActionFactory::repeat()`` creates after a run that finished at ``now_ts``.

    Due (now at or after the scheduled time): interval -> now + interval; cron -> next match strictly after now
    (UTC). Otherwise (run early) the same scheduled time. Class, recurrence and ``first_timestamp`` are kept.
    PHP compares DateTimes with microseconds, so a run that finishes within its scheduled second is already
    "later"; with whole seconds that is ``>=`` (else the next instance would be due at once, again and again)."""
    if isinstance(schedule, IntervalSchedule):
        if now_ts >= schedule.scheduled_timestamp:
            return replace(schedule, scheduled_timestamp=now_ts + schedule.interval_seconds)
        return schedule
    if isinstance(schedule, CronSchedule):
        if now_ts >= schedule.scheduled_timestamp:
            return replace(schedule, scheduled_timestamp=cron_next_run(schedule.expression, now_ts))
        return schedule
    raise ValueError(f"{type(schedule).__name__} is not recurring; it has no next instance")
