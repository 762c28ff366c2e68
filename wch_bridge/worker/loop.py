"""The worker loop, in the shape of rq's ``work()``: each turn runs the side tasks (heartbeats, orphans, touch,
the tick callback), then refills the pool (write finished outcomes, take due actions in one batch) and collects
results; it leaves when stopped or, with ``--once``, when nothing due is left. The parts: ``execute`` (one
action, no database), ``outcomes`` (writing them), ``refill`` (when to take), ``liveness`` (side tasks) and
``signals`` (stopping)."""

from __future__ import annotations

import logging
import os
import queue
import socket
import time
import uuid
from collections.abc import Callable

from wch_bridge.errors import TransientStoreError
from wch_bridge.handlers.base import Handler, Services
from wch_bridge.hooks import WHATSAPP_HOOKS
from wch_bridge.models import CONTEXT, Action
from wch_bridge.settings import Settings
from wch_bridge.store.paused import paused_hooks
from wch_bridge.store.queue.actions import ActionStore, TakeRequest
from wch_bridge.store.schema import actions_table
from wch_bridge.store.workers import WorkerRegistry
from wch_bridge.worker.execute import Executor, Result, clean_message
from wch_bridge.worker.liveness import Liveness, SendGate
from wch_bridge.worker.outages import Outages
from wch_bridge.worker.outcomes import OutcomeWriter, WorkerStats
from wch_bridge.worker.pool import HandlerPool
from wch_bridge.worker.refill import RETRY_SOON_S, AfterTake, RefillPolicy, collect
from wch_bridge.worker.signals import Stopper

log = logging.getLogger("wch_bridge.worker")

#: Seconds between two reads of the paused hooks at least (``hooks pause``); otherwise the poll interval.
PAUSED_READ_MIN_S = 1.0


class Worker:
    """Poll -> take -> run on a thread pool -> record outcomes (batched) -> follow-ups and next instances.
    ``heartbeats`` (the ``WorkerRegistry``) and ``send_gate`` (the WhatsApp ``ApiGate``) come from ``app``:
    without heartbeats there is no heartbeat row and no orphan recovery."""

    def __init__(
        self,
        store: ActionStore,
        registry: dict[str, Handler],
        settings: Settings,
        services: Services | None = None,
        *,
        secrets: tuple[str, ...] = (),
        on_result: Callable[[Result], None] | None = None,
        on_tick: Callable[[Worker], None] | None = None,
        rerunnable: frozenset[str] = frozenset(),
        worker_id: str | None = None,
        heartbeats: WorkerRegistry | None = None,
        send_gate: SendGate | None = None,
    ) -> None:
        self.store = store
        self.registry = dict(registry)
        self.settings = settings
        self.services = services or Services(clock=store.clock, site=store.site, settings=settings)
        self.clock = store.clock
        self.secrets = tuple(s for s in secrets if s)
        self.on_result = on_result
        self.on_tick = on_tick
        self.rerunnable = rerunnable  # hooks whose orphans go back to pending (ledger-protected or upserts)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.heartbeats = heartbeats
        self.send_gate = send_gate
        self.stats = WorkerStats()
        self.abandoned_threads = False  # True when run() returned while handler threads were still running
        self.policy = RefillPolicy.from_settings(settings)
        self._results: queue.Queue[Result] = queue.Queue()
        self._inflight: dict[int, tuple[Action, float]] = {}
        self._unwritten: list[Result] = []
        self._taken_total = 0
        self._halt_noted = False
        self._paused: frozenset[str] = frozenset()  # hooks paused by `wch-bridge hooks pause`: not taken
        self._paused_read = float("-inf")
        self._wire_parts()

    def _wire_parts(self) -> None:
        """The parts: stopping, outages, running one action, writing outcomes, liveness."""
        self.stopper = Stopper(
            self.settings.grace_period, self.send_gate, running=lambda: len(self._inflight)
        )
        self.stop_event = self.stopper.event  # handlers see this (Job.stop): stop between units of work
        self.outages = Outages(self.store.queue_is_stale, self._clean)
        self.executor = Executor(
            self.registry, self.services, self.stop_event, self.clock, self.rerunnable, self.secrets
        )
        self.outcomes = OutcomeWriter(
            self.store,
            default_group=self.settings.groups[0],
            stats=self.stats,
            inflight=self._inflight,
            outages=self.outages,
            clean=self._clean,
            notify=self._notify,
        )
        self.liveness = Liveness(
            self.store,
            self.settings,
            self.heartbeats,
            worker_id=self.worker_id,
            inflight=self._inflight,
            served=lambda: self.hooks,
            outages=self.outages,
            gate=self.send_gate,
            ledger=getattr(self.services, "ledger", None),
            rerunnable=self.rerunnable,
        )

    # ------------------------------------------------------------------ control
    @property
    def hooks(self) -> list[str]:
        """Hooks this worker takes: ``--hooks`` when narrowed (even without a handler: those fail clearly), else
        exactly the hooks that have a registered handler."""
        return sorted(self.settings.hooks) if self.settings.hooks else sorted(self.registry)

    @property
    def inflight_ids(self) -> list[int]:
        return list(self._inflight)

    def request_stop(self, hard: bool = False) -> None:
        self.stopper.request(hard)

    def install_signal_handlers(self) -> None:
        self.stopper.install()

    def recover_orphans(self, hooks: list[str], group_ids: list[int]) -> int:
        return self.liveness.recover_orphans(hooks, group_ids)

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Run until stopped (or, with ``once``, until nothing due is left). Returns the process exit code."""
        hooks, group_ids = self._start()
        pool = HandlerPool(self.settings.concurrency, self._run_one, "wch-action")
        try:
            while self._turn(hooks, group_ids, pool):
                pass
            self._leave(pool)
        finally:
            pool.shutdown(wait=not self.abandoned_threads)
        self.liveness.stopped()
        log.info(
            "worker stopped: %d taken, %d complete, %d failed, %d released",
            self.stats.taken,
            self.stats.completed,
            self.stats.failed,
            self.stats.released,
        )
        return 1 if self.stopper.hard else 0

    def _turn(self, hooks: list[str], group_ids: list[int], pool: HandlerPool) -> bool:
        """One turn: side tasks, then wind down (stopping) or refill. False when it is time to leave."""
        self._side_tasks(hooks, group_ids)
        if self.stopper.hard:
            return False
        if self.stopper.stopping:
            return self._wind_down()
        return self._refill(hooks, group_ids, pool)

    def _start(self) -> tuple[list[str], list[int]]:
        self.liveness.start()
        group_ids = self._resolve_groups()
        hooks = self.hooks
        leftover = self.outages.value(self.store.leftover_bridge_indexes, [])
        if leftover:
            log.warning(
                "index(es) %s on %s were added by an earlier wch-bridge and change PHP's own query plans "
                "(PHP's runners can deadlock against each other): drop them with `wch-bridge schema "
                "drop-indexes`",
                ", ".join(leftover),
                actions_table(self.store.prefix),
            )
        self.outages.guard(lambda: self.store.refresh_queue(hooks, group_ids, force=True))
        s = self.settings
        log.info(
            "worker started: hooks=%s groups=%s concurrency=%d",
            ",".join(hooks),
            ",".join(s.groups),
            s.concurrency,
        )
        return hooks, group_ids

    def _side_tasks(self, hooks: list[str], group_ids: list[int]) -> None:
        self._collect(0)
        self._read_paused()
        self.liveness.tick(hooks, group_ids, stopping=self.stopper.stopping)
        if self.on_tick:
            self.outages.guard(lambda: self.on_tick(self))  # type: ignore[misc]
        self.liveness.touch_long_running()
        self.liveness.note_long_running()

    def _wind_down(self) -> bool:
        """Stopping: write what finished; go on while actions run and the grace period lasts."""
        self._flush_unwritten()
        if not self._inflight or self.stopper.grace_over():
            return False
        self._collect(0.2)
        return True

    def _refill(self, hooks: list[str], group_ids: list[int], pool: HandlerPool) -> bool:
        """Write finished outcomes and take more when the pool has room; then wait for results. False when
        ``--once`` or ``--max-actions`` is done."""
        room = self.policy.room(len(self._inflight), len(self._unwritten), self._taken_total)
        oldest = self._unwritten[0].finished if self._unwritten else None
        hold = self.policy.hold_for(self._busy(), room, oldest, time.monotonic())
        if hold > 0:  # most of the pool is busy: let results gather, then write them with the next take
            self._collect(hold)
            return True
        limit = self.policy.take_limit(room)
        seen = 0
        if limit > 0:
            taken = self._take(hooks, group_ids, limit, pool)
            if taken is None:
                return True
            seen = taken
        self._flush_unwritten()
        if self.policy.finished(self._taken_total, len(self._inflight), seen):
            return False
        self._collect(self.policy.wait(limit, seen, lambda: self._idle_wait(hooks, group_ids)))
        return True

    def _take(self, hooks: list[str], group_ids: list[int], limit: int, pool: HandlerPool) -> int | None:
        """Take up to ``limit`` and hand them to the pool. Returns the candidates read, or None when the next
        turn should come at once (more may be due, others took them, or the database is away)."""
        try:
            got, seen = self._take_batch(hooks, group_ids, limit)
            self.outages.over()
        except TransientStoreError as exc:
            self.outages.failed(exc)
            self._collect(min(5.0, self.settings.poll_interval))
            return None
        for action in got:
            self._taken_total += 1
            self._inflight[action.action_id] = (action, time.monotonic())
            pool.submit(action)
        step = self.policy.after_take(limit, len(got), seen)
        if step is AfterTake.RETRY_SOON:
            self._collect(RETRY_SOON_S)  # others took them; try again shortly
        return seen if step is AfterTake.SETTLE else None

    def _leave(self, pool: HandlerPool) -> None:
        """Whatever still runs goes back to pending (hard stop, or the grace period ran out); what was handed to
        the pool but not started yet never starts."""
        never_started = {a.action_id for a in pool.cancel_pending()}
        self._collect(0)
        self._flush_unwritten()
        self.abandoned_threads = any(aid not in never_started for aid in self._inflight)
        self.outcomes.release_unfinished(self._unwritten)
        self._flush_unwritten(final=True)

    # ------------------------------------------------------------------ steps
    def _resolve_groups(self) -> list[int]:
        while True:
            try:
                return list(self.store.group_ids(self.settings.groups, create=True).values())
            except TransientStoreError as exc:
                self.outages.failed(exc)
                if self.stopper.stopping:
                    return []
                time.sleep(min(5.0, self.settings.poll_interval))

    def _read_paused(self) -> None:
        """Re-read the paused hooks (``store.paused``) once per poll interval, at most once a second (a drain with a
        short poll interval pays no read per take); a failed read keeps the last set."""
        if time.monotonic() - self._paused_read < max(PAUSED_READ_MIN_S, self.settings.poll_interval):
            return
        self._paused_read = time.monotonic()
        paused = self.outages.value(lambda: frozenset(paused_hooks(self.store)), self._paused)
        if paused != self._paused:
            log.info("paused hooks (not taken; running actions finish): %s", ", ".join(sorted(paused)) or "none")
        self._paused = paused

    def _sendable(self, hooks: list[str]) -> list[str]:
        """``hooks`` minus the paused ones and, once the shared ApiGate is halted (auth error 190 and the like),
        those that call WhatsApp: they stay pending instead of each failing at once; the worker keeps serving the
        other hooks."""
        if self._paused:
            hooks = [h for h in hooks if h not in self._paused]
        gate = self.send_gate
        if gate is None or not getattr(gate, "halted", False):
            return hooks
        if not self._halt_noted:
            self._halt_noted = True
            log.error(
                "WhatsApp sends are halted (%s): not taking %s any more; they stay pending until the worker "
                "is restarted with a working access token",
                self._clean(str(gate.halt_reason or "")),
                ", ".join(h for h in hooks if h in WHATSAPP_HOOKS) or "nothing",
            )
        return [h for h in hooks if h not in WHATSAPP_HOOKS]

    def _take_batch(self, hooks: list[str], group_ids: list[int], limit: int) -> tuple[list[Action], int]:
        """Write the outcomes waiting to be written, then take up to ``limit`` due actions (two short transactions:
        finishing and taking never share one). Returns the actions taken and the number of candidates read."""
        with self.store.one_connection():
            if self._unwritten:
                self.outcomes.record(self._unwritten)
            hooks = self._sendable(hooks)
            if not hooks:
                return [], 0
            taken = self.store.take_due(TakeRequest(hooks, group_ids, limit), CONTEXT, self.clock.now())
        self.stats.taken += len(taken.actions)
        return taken.actions, taken.seen

    def _idle_wait(self, hooks: list[str], group_ids: list[int]) -> float:
        """Seconds (real time) to wait: the poll interval, or less when the next action is due sooner."""
        hooks = self._sendable(hooks)
        if not hooks:
            return self.policy.next_due_wait(None)
        try:
            nxt = self.store.next_due_at(hooks, group_ids)
        except TransientStoreError as exc:
            self.outages.failed(exc)
            return self.policy.next_due_wait(None)
        if nxt is None:
            return self.policy.next_due_wait(None)
        return self.policy.next_due_wait((nxt - self.clock.now()).total_seconds() / self.clock.speed)

    def _busy(self) -> int:
        return self.policy.busy(len(self._inflight), len(self._unwritten))

    def _collect(self, block_for: float) -> None:
        """Move finished results to ``_unwritten`` (written by the next take, or ``_flush_unwritten``)."""
        policy = self.policy
        collect(
            self._results,
            self._unwritten,
            block_for,
            lambda: policy.free(len(self._inflight), len(self._unwritten)) < policy.low_water,
        )

    def _flush_unwritten(self, final: bool = False) -> None:
        self.outcomes.flush(self._unwritten, final=final, hard=lambda: self.stopper.hard)

    def _run_one(self, action: Action) -> None:
        """On a pool thread: run the action, hand the result to the main loop (never raises)."""
        self._results.put(self.executor.run(action))

    def _notify(self, r: Result) -> None:
        if self.on_result:
            try:
                self.on_result(r)
            except Exception:  # noqa: BLE001
                log.exception("on_result callback failed")

    def _clean(self, text: str) -> str:
        return clean_message(text, self.secrets)
