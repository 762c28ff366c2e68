"""The worker's side task: heartbeats (what it holds and serves), recovery of dead workers' actions, the sweep of
stale ``sending`` ledger rows, touching long-running actions, and sharing the site's send rate among live
workers. Every step runs guarded: a failure is logged (or counted as an outage), never fatal."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from wch_bridge.health import live_worker_seconds
from wch_bridge.models import CONTEXT, Action
from wch_bridge.settings import Settings
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.workers import WorkerRegistry
from wch_bridge.worker.outages import Outages

log = logging.getLogger("wch_bridge.worker")

#: Seconds between two sweeps of stale `sending` ledger rows by one worker.
SWEEP_EVERY = 30.0
#: Real seconds an action runs before the worker logs (once) that it is still running.
LONG_RUNNING_NOTE = 30.0


class SendGate(Protocol):
    """What the worker uses of the shared WhatsApp gate (``api_gate.ApiGate``)."""

    messages_per_second: float

    @property
    def halted(self) -> bool: ...

    @property
    def halt_reason(self) -> str | None: ...

    def close(self) -> None: ...

    def set_rate(self, messages_per_second: float) -> None: ...


class Liveness:
    """Heartbeats, orphans, ledger sweep, touch and send-rate sharing for one worker. ``inflight`` is the loop's
    own map (action id -> (action, monotonic start)); ``served`` the hooks it takes."""

    def __init__(
        self,
        store: ActionStore,
        settings: Settings,
        heartbeats: WorkerRegistry | None,
        *,
        worker_id: str,
        inflight: dict[int, tuple[Action, float]],
        served: Callable[[], list[str]],
        outages: Outages,
        gate: SendGate | None = None,
        ledger: Any = None,
        rerunnable: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = store.clock
        self.heartbeats = heartbeats
        self.worker_id = worker_id
        self.inflight = inflight
        self.served = served
        self.outages = outages
        self.gate = gate
        self.ledger = ledger
        self.rerunnable = rerunnable
        self.on = False
        self.started_at = self.clock.now()
        self._last_beat = 0.0
        self._last_orphan_check = 0.0
        self._last_sweep = 0.0
        self._last_touch = time.monotonic()
        self.long_running_note = LONG_RUNNING_NOTE
        self._noted: set[int] = set()

    def start(self) -> bool:
        """Whether heartbeats (and orphan recovery) run: the heartbeat table must exist."""
        if self.heartbeats is None:
            return False
        self.on = self.outages.value(self.heartbeats.available, False)
        if not self.on:
            log.warning(
                "table %s missing: no heartbeats and no orphan recovery (run `wch-bridge schema install` "
                "or start through `wch-bridge run`, which creates it)",
                self.heartbeats.table_name,
            )
        return self.on

    def tick(self, hooks: list[str], group_ids: list[int], *, stopping: bool) -> None:
        """Beat when due; look for orphans (and sweep the ledger) at most every poll interval while not stopping."""
        s = self.settings
        if not self.on:
            return
        if time.monotonic() - self._last_beat >= s.heartbeat_interval / self.clock.speed:
            self.outages.guard(self.beat)
        if time.monotonic() - self._last_orphan_check >= max(0.5, s.poll_interval) and not stopping:
            self._last_orphan_check = time.monotonic()
            self.outages.guard(lambda: self.recover_orphans(hooks, group_ids))
            self.outages.guard(self.sweep_ledger)

    def stopped(self) -> None:
        """The last heartbeat: the row says this worker stopped."""
        if self.on:
            self.outages.guard(lambda: self.beat(stopped=True))

    def beat(self, stopped: bool = False) -> None:
        from wch_bridge import __version__

        assert self.heartbeats is not None
        self.heartbeats.beat(
            self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            started_at=self.started_at,
            now=self.clock.now(),
            in_hand_ids=list(self.inflight),
            stopped=stopped,
            groups=self.settings.groups,
            hooks=self.served(),
        )
        self._last_beat = time.monotonic()
        if not stopped:
            self.share_send_rate()

    def share_send_rate(self) -> None:
        """``messages_per_second`` is the site's limit (one WhatsApp phone number), not each process's: with K
        live workers (heartbeats) each sends at most 1/K of it. Re-checked at every heartbeat."""
        gate = self.gate
        total = float(self.settings.messages_per_second or 0)
        if gate is None or not hasattr(gate, "set_rate") or total <= 0 or self.heartbeats is None:
            return
        live = max(1, self.heartbeats.live_count(self.clock.now(), live_worker_seconds(self.settings)))
        share = total / live
        if abs(share - gate.messages_per_second) > 1e-9:
            gate.set_rate(share)
            log.info(
                "send limit: %g msg/s shared by %d live worker(s): %g msg/s for this one", total, live, share
            )

    def sweep_ledger(self) -> None:
        """Ledger rows a dead run left ``sending`` longer than ``stale_after`` become ``unknown`` (in doubt);
        checked at most every :data:`SWEEP_EVERY` seconds (a row needs 300 s to become stale)."""
        ledger = self.ledger
        if self._last_sweep and time.monotonic() - self._last_sweep < SWEEP_EVERY / self.clock.speed:
            return
        self._last_sweep = time.monotonic()
        if ledger is not None and hasattr(ledger, "sweep_stale"):
            n = ledger.sweep_stale()
            if n:
                log.warning(
                    "%d message(s) left on the wire by a stopped run are now 'unknown' (in doubt, not "
                    "re-sent): wch-bridge messages list --status unknown",
                    n,
                )

    def recover_orphans(self, hooks: list[str], group_ids: list[int]) -> int:
        """Take over the in-progress actions of dead workers (heartbeat older than ``orphan_timeout``):
        ledger-protected hooks and upserts go back to ``pending``; any other hook is failed with a clear reason."""
        if self.heartbeats is None:
            return 0
        now = self.clock.now()
        limit = live_worker_seconds(self.settings)  # not live = dead: its actions are orphans
        recovered: list[int] = []
        for aid, hook in self.heartbeats.orphans(hooks, group_ids, now, limit):
            if aid in self.inflight:
                continue
            if self._take_over(aid, hook, limit):
                recovered.append(aid)
                log.warning("recovered orphaned action %d (%s) from a dead worker", aid, hook)
        if recovered:  # the dead worker's row no longer shows them "in hand"
            self.heartbeats.forget(recovered, now, limit)
        return len(recovered)

    def _take_over(self, aid: int, hook: str, limit: float) -> bool:
        if hook in self.rerunnable:
            return self.store.release(
                aid,
                f"action reset via {CONTEXT}: its worker stopped sending heartbeats for "
                f"{int(limit)} s; it will run again (sends already made are not repeated)",
            )
        return self.store.fail_running(
            aid,
            f"action failed via {CONTEXT}: its worker stopped sending heartbeats "
            f"for {int(limit)} s while it ran; not re-run automatically because "
            f"{hook} is not known to be safe to repeat (retry it with "
            f"`wch-bridge jobs retry {aid}`)",
        )

    def touch_long_running(self) -> None:
        """Refresh ``last_attempt_gmt`` of actions running longer than ``touch_interval`` (so none looks dead)."""
        interval = self.settings.touch_interval / self.clock.speed
        if not self.inflight or time.monotonic() - self._last_touch < interval:
            return
        self._last_touch = time.monotonic()
        cutoff = time.monotonic() - interval
        ids = [aid for aid, (_a, started) in self.inflight.items() if started <= cutoff]
        if ids:
            self.outages.guard(lambda: self.store.touch(ids))

    def note_long_running(self) -> None:
        """One info line per action still running after ``long_running_note`` real seconds since it was taken."""
        self._noted &= set(self.inflight)
        now = time.monotonic()
        for aid, (action, started) in list(self.inflight.items()):
            if aid not in self._noted and now - started >= self.long_running_note:
                self._noted.add(aid)
                log.info("action %d (%s) still running after %.0fs", aid, action.hook, now - started)
