"""The send gate every thread of one worker shares before calling the WhatsApp API: the messages-per-second
limit (each caller reserves a send slot and sleeps once until it), a shared pause (throttling codes slow *all*
threads), a halt flag (auth/config errors stop all sends) and shutdown. Counters feed metrics and the report."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from wch_bridge.errors import ApiError, ConfigError, ShutdownRequested

log = logging.getLogger("wch_bridge.whatsapp")

HALT = "halt"  # whatsapp.HALT: the ApiError category raised while sends are halted

Sleeper = Callable[[float, threading.Event], object]


def _event_sleep(seconds: float, event: threading.Event) -> None:
    event.wait(max(0.0, seconds))


class ApiGate:
    """Thread-safe send gate shared by all threads of one worker.

    * ``acquire()`` blocks until a message may go out: not halted, not paused, and its reserved send slot has
      come (``messages_per_second`` slots a second, the first ``burst`` at once).
    * ``pause_for(seconds, reason)`` makes every ``acquire()`` wait until the pause has passed.
    * ``halt(reason)`` makes every ``acquire()`` raise ``ApiError(category="halt")`` until ``resume()``.
    * ``close()`` (worker shutdown) wakes all waiters; ``acquire()`` then raises ``ShutdownRequested``.

    ``clock`` (seconds, monotonic) and ``sleep(seconds, event)`` are injectable; the default sleep waits on an
    internal event so that ``halt()`` / ``close()`` interrupt it. Counters feed metrics and the report."""

    _EPS = 1e-9

    def __init__(
        self,
        messages_per_second: float = 80.0,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleeper = _event_sleep,
    ) -> None:
        if messages_per_second <= 0:
            raise ConfigError(f"messages_per_second must be positive, got {messages_per_second!r}")
        if burst < 1:
            raise ConfigError(f"burst must be at least 1, got {burst!r}")
        self.messages_per_second = float(messages_per_second)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._next_slot = -math.inf  # the next free send slot (clock seconds)
        self._paused_until = -math.inf
        self._pause_reason = ""
        self._halted = False
        self._halt_reason: str | None = None
        self._halt_code: int | None = None
        self._closed = False
        self._children: list[ApiGate] = []
        self._pauses: list[tuple[float, str]] = []
        self.acquired = 0
        self.rate_limit_waits = 0
        self.rate_limit_wait_seconds = 0.0
        self.throttle_events = 0
        self.pause_wait_seconds = 0.0
        self.backoff_sleep_seconds = 0.0

    # -- state ----------------------------------------------------------------------------------------------
    @property
    def halted(self) -> bool:
        return self._halted

    @property
    def halt_reason(self) -> str | None:
        return self._halt_reason

    @property
    def halt_code(self) -> int | None:
        return self._halt_code

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pauses(self) -> list[tuple[float, str]]:
        """Every ``pause_for`` call so far as ``(seconds, reason)``."""
        with self._lock:
            return list(self._pauses)

    @property
    def sleep_seconds(self) -> float:
        """Total time threads spent waiting in this gate (rate limit + pauses + in-call back-off)."""
        return self.rate_limit_wait_seconds + self.pause_wait_seconds + self.backoff_sleep_seconds

    def paused_for(self) -> float:
        """Seconds left of the current shared pause (0 when not paused)."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (for metrics and the report)."""
        with self._lock:
            return {
                "acquired": self.acquired,
                "rate_limit_waits": self.rate_limit_waits,
                "rate_limit_wait_seconds": self.rate_limit_wait_seconds,
                "throttle_events": self.throttle_events,
                "pause_wait_seconds": self.pause_wait_seconds,
                "backoff_sleep_seconds": self.backoff_sleep_seconds,
                "sleep_seconds": self.sleep_seconds,
                "halted": self._halted,
                "halt_reason": self._halt_reason,
            }

    # -- control --------------------------------------------------------------------------------------------
    def set_rate(self, messages_per_second: float) -> None:
        """Change the send limit (this process's share of the site's limit when several workers run); slots
        already reserved keep their times."""
        if messages_per_second <= 0:
            raise ConfigError(f"messages_per_second must be positive, got {messages_per_second!r}")
        with self._lock:
            self.messages_per_second = float(messages_per_second)

    def pause_for(self, seconds: float, reason: str) -> None:
        """Hold every sender for ``seconds`` from now (an existing longer pause is kept)."""
        seconds = max(0.0, float(seconds))
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until:
                self._paused_until = until
                self._pause_reason = reason
            self._pauses.append((seconds, reason))
            self.throttle_events += 1
        log.warning("WhatsApp sends paused for %.1f s: %s", seconds, reason)

    def halt(self, reason: str, code: int | None = None) -> None:
        """Stop all sends until ``resume()`` (expired token, missing permission, locked account...)."""
        with self._lock:
            first = not self._halted
            self._halted = True
            self._halt_reason = reason
            self._halt_code = code
            self._wake.set()
        if first:
            log.error("WhatsApp sends halted: %s", reason)

    def resume(self) -> None:
        with self._lock:
            self._halted = False
            self._halt_reason = None
            self._halt_code = None
            self._paused_until = -math.inf
            if not self._closed:
                self._wake.clear()
                if self._closed:  # closed (lock-free) just then: keep the waiters awake
                    self._wake.set()
        log.info("WhatsApp sends resumed")

    def close(self) -> None:
        """Worker shutdown: wake every waiter; later ``acquire()``/``sleep()`` raise ``ShutdownRequested``.
        Gates made by :meth:`child` close with it.

        Called from the worker's signal handler, which runs on the main thread wherever it was interrupted, maybe
        inside this gate (the send-rate share): so it takes no lock of the gate's. Setting the flag is atomic;
        waiters read it under the lock once woken."""
        self._closed = True
        self._wake.set()
        for child in list(self._children):
            child.close()

    def child(self) -> ApiGate:
        """A gate with its own halt and pauses (e.g. catalog calls: a catalog error must not stop messages),
        closed when this one closes."""
        gate = ApiGate(self.messages_per_second, self.burst, clock=self._clock, sleep=self._sleep)
        with self._lock:
            self._children.append(gate)
            closed = self._closed
        if closed:
            gate.close()
        return gate

    # -- waiting --------------------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._closed:
            raise ShutdownRequested("shutdown requested while waiting to call the WhatsApp API")
        if self._halted:
            raise ApiError(
                f"WhatsApp sends are halted: {self._halt_reason}", code=self._halt_code, category=HALT
            )

    def check(self) -> None:
        """Raise at once if halted or closed (calls that do not consume a message token)."""
        with self._lock:
            self._check()

    def acquire(self, *, token: bool = True) -> float:
        """Wait until a call may go out; returns the seconds waited (by the injected clock).

        Each caller reserves the next send slot (GCRA: slots ``1/messages_per_second`` apart, the first ``burst``
        at once) and sleeps once until it, so hundreds of waiting threads cost nothing: no thread wakes up to
        find the token taken by another (a shared bucket polled by every waiter burnt a CPU core at 80 msg/s
        with a few hundred senders). ``token=False`` (catalog calls) honours halt and pauses but does not use
        the message limit."""
        start = self._clock()
        while True:
            with self._lock:
                self._check()
                now = self._clock()
                if now < self._paused_until - self._EPS:
                    wait, slot = self._paused_until - now, None
                else:
                    if not token:
                        return now - start
                    interval = 1.0 / self.messages_per_second
                    slot = max(self._next_slot, now - (self.burst - 1.0) * interval)
                    self._next_slot = slot + interval
                    if slot <= now + self._EPS:
                        self.acquired += 1
                        return now - start
                    wait = slot - now
                    self.rate_limit_waits += 1
            if slot is None:
                self._wait(wait, rate=False)
                continue
            # sleep until the reserved slot (a halt or shutdown wakes us early and raises)
            while True:
                self._wait(wait, rate=True)
                with self._lock:
                    self._check()
                    now = self._clock()
                    if now >= slot - self._EPS:
                        if now < self._paused_until - self._EPS:
                            break  # a pause began meanwhile: wait for it, then reserve a new slot
                        self.acquired += 1
                        return now - start
                    wait = slot - now

    def _wait(self, seconds: float, *, rate: bool) -> None:
        before = self._clock()
        self._sleep(seconds, self._wake)
        slept = max(0.0, self._clock() - before)
        with self._lock:
            if rate:
                self.rate_limit_wait_seconds += slept
            else:
                self.pause_wait_seconds += slept

    def sleep(self, seconds: float) -> None:
        """In-call back-off of one thread (interrupted by ``halt``/``close``)."""
        self.check()
        before = self._clock()
        self._sleep(max(0.0, seconds), self._wake)
        with self._lock:
            self.backoff_sleep_seconds += max(0.0, self._clock() - before)
        self.check()
