"""Stopping the worker: the first SIGTERM/SIGINT stops taking work and lets running actions finish within the
grace period; the second stops at once (running actions go back to ``pending``, exit code 1)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from wch_bridge.worker.liveness import SendGate

log = logging.getLogger("wch_bridge.worker")


class Stopper:
    """The worker's stop state. ``event`` is what handlers see (``Job.stop``): stop between units of work."""

    def __init__(
        self, grace_period: float, gate: SendGate | None = None, running: Callable[[], int] = lambda: 0
    ) -> None:
        self.grace_period = grace_period
        self.gate = gate
        self.running = running  # how many actions run now (for the first signal's log line)
        self.event = threading.Event()
        self.stopping = False
        self.hard = False
        self.signals = 0
        self.grace_deadline: float | None = None

    def request(self, hard: bool = False) -> None:
        """Stop (``hard``: at once). Only the first request wakes the handlers and closes the gate: a second signal
        can arrive while the first one's handler is still inside ``Event.set`` or ``gate.close`` (their locks are
        not reentrant), so a later request only raises the flag."""
        if hard:
            self.hard = True
        if self.stopping:
            return
        self.grace_deadline = time.monotonic() + self.grace_period
        self.stopping = True
        self.event.set()
        gate = self.gate
        if gate is not None and hasattr(gate, "close"):
            gate.close()  # a handler waiting in an API back-off stops now (its action goes back to pending)

    def grace_over(self) -> bool:
        return bool(self.grace_deadline and time.monotonic() > self.grace_deadline)

    def on_signal(self, signum: int, _frame: Any) -> None:
        self.signals += 1
        if self.signals == 1:
            log.info(
                "signal %s: no new work; waiting up to %ss for %d running action(s)",
                signum,
                self.grace_period,
                self.running(),
            )
            self.request()
        else:
            log.warning("second signal %s: stopping now", signum)
            self.request(hard=True)

    def install(self) -> None:
        """SIGTERM and SIGINT call :meth:`on_signal` (only possible from the main thread)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.on_signal)
            signal.signal(signal.SIGINT, self.on_signal)
