"""Clocks and the site's time zone, as WordPress and Action Scheduler compute local times."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZERO_DATE = "0000-00-00 00:00:00"
FMT = "%Y-%m-%d %H:%M:%S"


def fmt(dt: datetime | None) -> str:
    """``Y-m-d H:i:s`` as PHP writes it (no fraction); None -> the zero date."""
    if dt is None:
        return ZERO_DATE
    return dt.strftime(FMT)


def parse_db_date(value: object) -> datetime | None:
    """A DATETIME as a driver returns it -> naive datetime; NULL / zero date / junk -> None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0)
    text = str(value).strip()
    if not text or text.startswith("0000-00-00"):
        return None
    try:
        return datetime.strptime(text[:19], FMT)
    except ValueError:
        return None


class Clock:
    """UTC wall clock. ``now()`` returns a naive UTC datetime truncated to whole seconds (PHP's resolution).

    ``speed`` > 1 makes time run faster from the moment the clock was made (tests' compressed clock: retry
    delays of 60/300/900 s pass in seconds without changing the rules)."""

    def __init__(self, speed: float = 1.0, offset_seconds: float = 0.0) -> None:
        self.speed = speed
        self._t0 = time.time()
        self._offset = offset_seconds
        self._lock = threading.Lock()

    def timestamp(self) -> float:
        real = time.time()
        return self._t0 + (real - self._t0) * self.speed + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(int(self.timestamp()), UTC).replace(tzinfo=None)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def sleep(self, seconds: float, event: threading.Event | None = None) -> None:
        """Sleep ``seconds`` of clock time (shorter in real time when sped up); wake early on ``event``."""
        real = max(0.0, seconds / self.speed)
        if event is not None:
            event.wait(real)
        else:
            time.sleep(real)


@dataclass(frozen=True)
class SiteTime:
    """The WordPress site's time zone from ``timezone_string`` / ``gmt_offset``.

    AS writes two kinds of local time (reference section 6): ``last_attempt_local`` through WordPress's
    ``current_time('mysql')`` (correct for offsets too), and ``scheduled_date_local`` / ``log_date_local`` through
    ActionScheduler_TimezoneHelper, which equals UTC on offset-only sites."""

    tz: tzinfo
    named: bool

    @classmethod
    def utc(cls) -> SiteTime:
        return cls(UTC, True)

    @classmethod
    def from_options(cls, timezone_string: str | None, gmt_offset: str | float | None) -> SiteTime:
        name = (timezone_string or "").strip()
        if name:
            try:
                return cls(ZoneInfo(name), True)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        try:
            hours = float(gmt_offset) if gmt_offset not in (None, "") else 0.0
        except (TypeError, ValueError):
            hours = 0.0
        return cls(timezone(timedelta(hours=hours)), False)

    def local(self, utc_naive: datetime) -> datetime:
        """WordPress ``current_time('mysql')`` for the instant ``utc_naive``."""
        return utc_naive.replace(tzinfo=UTC).astimezone(self.tz).replace(tzinfo=None)

    def as_local(self, utc_naive: datetime) -> datetime:
        """ActionScheduler_TimezoneHelper rendering (scheduled_date_local, log_date_local)."""
        return self.local(utc_naive) if self.named else utc_naive
