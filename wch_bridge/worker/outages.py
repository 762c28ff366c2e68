"""Database outages seen by the worker: the first failure is logged once, the recovery once (and the pick-up
queue reconciled); side tasks run guarded so that no failure of theirs stops the worker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from wch_bridge.errors import LockBusyError, TransientStoreError

log = logging.getLogger("wch_bridge.worker")
T = TypeVar("T")


class Outages:
    """``failed(exc)`` / ``over()`` bracket an outage; ``guard`` and ``value`` run side tasks and probes."""

    def __init__(self, on_recovered: Callable[[], object], clean: Callable[[str], str]) -> None:
        self._on_recovered = on_recovered
        self._clean = clean
        self.since: float | None = None

    def failed(self, exc: Exception) -> None:
        if isinstance(exc, LockBusyError):  # rows someone held just then: not an outage, try again shortly
            log.debug("rows busy, trying again: %s", self._clean(str(exc)))
            return
        if self.since is None:
            self.since = time.monotonic()
            log.warning("database unavailable, retrying with back-off: %s", self._clean(str(exc)))

    def over(self) -> None:
        if self.since is not None:
            log.info("database reachable again after %.1fs", time.monotonic() - self.since)
            self.since = None
            self._on_recovered()  # rows may have changed while it was away: reconcile the pick-up queue

    def guard(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except TransientStoreError as exc:
            self.failed(exc)
        except Exception:  # noqa: BLE001 - a side task must never stop the worker
            log.exception("worker side task failed")

    @staticmethod
    def value(fn: Callable[[], T], default: T) -> T:
        """``fn()``, or ``default`` when it fails (a start-up probe must never stop the worker)."""
        try:
            return fn()
        except Exception:  # noqa: BLE001
            return default
