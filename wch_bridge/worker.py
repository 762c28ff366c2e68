"""The worker: poll -> take -> run on a thread pool -> record outcomes (batched) -> schedule follow-ups and the
next instance of recurring actions. Signals: the first stops taking work and lets running actions finish within
the grace period; the second stops at once (running actions go back to ``pending``)."""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.errors import (
    ActionDataError,
    LockBusyError,
    ShutdownRequested,
    TransientStoreError,
    WchBridgeError,
)
from wch_bridge.handlers.base import Handler, Job, Services
from wch_bridge.hooks import WHATSAPP_HOOKS
from wch_bridge.models import CONTEXT, Action, NewAction, Outcome
from wch_bridge.settings import Settings
from wch_bridge.store.actions import ActionStore, NewRow, TakeRequest
from wch_bridge.store.workers import WorkerRegistry

log = logging.getLogger("wch_bridge.worker")
T = TypeVar("T")

MAX_MESSAGE = 1000
#: After the first result of a burst, wait this long for the rest before writing (fast actions finish together).
LINGER_S = 0.002
#: An outcome waits at most this long to be written while the pool is busy (batching never delays it more).
MAX_HOLD_S = 0.05
#: A rerunnable action whose handler lost the database goes back to pending until it has started this many times.
MAX_TRANSIENT_RERUNS = 10
#: Seconds between two sweeps of stale `sending` ledger rows by one worker.
SWEEP_EVERY = 30.0


def no_callback_message(hook: str) -> str:
    return f"Scheduled action for {hook} will not be executed as no callbacks are registered."


@dataclass
class Result:
    """What a thread reports for one action; the main loop writes it (retrying while the database is away)."""

    action: Action
    kind: str  # "complete" | "failed" | "release"
    message: str = ""
    outcome: Outcome | None = None
    schedule: Any = None  # parsed schedule (recurring actions get their next instance)
    started: float = 0.0
    finished: float = 0.0
    finished_at: datetime | None = None
    follow_ups_done: bool = False


@dataclass
class WorkerStats:
    taken: int = 0
    completed: int = 0
    failed: int = 0
    released: int = 0
    not_recorded: int = 0
    by_hook: dict[tuple[str, str], int] = field(default_factory=dict)


class HandlerPool:
    """``size`` handler threads, all started up front: the worker's memory stays flat (no thread is created in
    the middle of a drain) and handing an action over is one queue put. Threads are daemons, so a handler stuck
    past a hard stop cannot hold the process open."""

    def __init__(self, size: int, run: Callable[[Action], None], name: str) -> None:
        self._queue: queue.SimpleQueue[Action | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._loop, args=(run,), name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, size))]
        for t in self._threads:
            t.start()

    def _loop(self, run: Callable[[Action], None]) -> None:
        while (action := self._queue.get()) is not None:
            run(action)  # _run_one never raises

    def submit(self, action: Action) -> None:
        self._queue.put(action)

    def cancel_pending(self) -> list[Action]:
        """Take back the actions no thread has started yet."""
        out: list[Action] = []
        try:
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    out.append(item)
        except queue.Empty:
            return out

    def shutdown(self, wait: bool) -> None:
        self.cancel_pending()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for t in self._threads:
                t.join()


class Worker:
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
    ) -> None:
        self.store = store
        self.registry = dict(registry)
        self.settings = settings
        self.services = services or Services(clock=store.clock, site=store.site, settings=settings)
        self.clock = store.clock
        self.secrets = tuple(s for s in secrets if s)
        self.on_result = on_result
        self.on_tick = on_tick
        self.stats = WorkerStats()
        self.stop_event = threading.Event()  # handlers see this (Job.stop): stop between units of work
        self._stopping = False
        self._hard_stop = False
        self._results: queue.Queue[Result] = queue.Queue()
        self._inflight: dict[int, tuple[Action, float]] = {}
        self._unwritten: list[Result] = []
        self._outage_since: float | None = None
        self._last_touch = time.monotonic()
        self._signals = 0
        self._grace_deadline: float | None = None
        self.abandoned_threads = False  # True when run() returned while handler threads were still running
        self.rerunnable = rerunnable  # hooks whose orphans go back to pending (ledger-protected or upserts)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.heartbeats = WorkerRegistry(store.engine, store.t)
        self._started_at = self.clock.now()
        self._last_beat = 0.0
        self._last_orphan_check = 0.0
        self._last_sweep = 0.0
        self._heartbeats_on = False
        self._halt_noted = False

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
        if not self._stopping:
            self._grace_deadline = time.monotonic() + self.settings.grace_period
        self._stopping = True
        self.stop_event.set()
        gate = getattr(getattr(self.services, "whatsapp", None), "gate", None)
        if gate is not None and hasattr(gate, "close"):
            gate.close()  # a handler waiting in an API back-off stops now (its action goes back to pending)
        if hard:
            self._hard_stop = True

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("signal %s: no new work; waiting up to %ss for %d running action(s)",
                     signum, self.settings.grace_period, len(self._inflight))
            self.request_stop()
        else:
            log.warning("second signal %s: stopping now", signum)
            self.request_stop(hard=True)

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        """Run until stopped (or, with ``once``, until nothing due is left). Returns the process exit code."""
        s = self.settings
        self._heartbeats_on = self._guarded_value(self.heartbeats.available, False)
        if not self._heartbeats_on:
            log.warning("table %s missing: no heartbeats and no orphan recovery (run `wch-bridge schema install` "
                        "or start through `wch-bridge run`, which creates it)", self.store.t.workers.name)
        group_ids = self._resolve_groups()
        hooks = self.hooks
        leftover = self._guarded_value(self.store.leftover_bridge_indexes, [])
        if leftover:
            log.warning("index(es) %s on %s were added by an earlier wch-bridge and change PHP's own query plans "
                        "(PHP's runners can deadlock against each other): drop them with `wch-bridge schema "
                        "drop-indexes`", ", ".join(leftover), self.store.t.actions.name)
        self._guard(lambda: self.store.refresh_queue(hooks, group_ids, force=True))
        log.info("worker started: hooks=%s groups=%s concurrency=%d", ",".join(hooks), ",".join(s.groups), s.concurrency)
        taken_total = 0
        pool = HandlerPool(s.concurrency, self._run_one, "wch-action")
        try:
            while True:
                self._collect(0)
                self._maintenance(hooks, group_ids)
                if self.on_tick:
                    self._guard(lambda: self.on_tick(self))  # type: ignore[misc]
                self._touch_long_running()
                if self._hard_stop:
                    break
                if self._stopping:
                    self._flush_unwritten()
                    if not self._inflight or (self._grace_deadline and time.monotonic() > self._grace_deadline):
                        break
                    self._collect(0.2)
                    continue
                free = self._free()
                if s.max_actions is not None:
                    free = min(free, s.max_actions - taken_total)
                hold = self._hold_for(free)
                if hold > 0:  # most of the pool is busy: let results gather, then write them with the next take
                    self._collect(hold)
                    continue
                limit = min(free, s.batch_size)
                seen = 0
                if limit > 0:
                    try:
                        got, seen = self._take_batch(hooks, group_ids, limit)
                        self._outage_over()
                    except TransientStoreError as exc:
                        self._outage(exc)
                        self._collect(min(5.0, s.poll_interval))
                        continue
                    for action in got:
                        taken_total += 1
                        self._inflight[action.action_id] = (action, time.monotonic())
                        pool.submit(action)
                    if got and seen == limit:
                        continue  # more may be due: keep draining
                    if seen and not got:
                        self._collect(0.05)  # others took them; try again shortly
                        continue
                self._flush_unwritten()
                if s.max_actions is not None and taken_total >= s.max_actions and not self._inflight:
                    break
                if s.once and not self._inflight and seen == 0:
                    break
                if limit <= 0:
                    wait = s.poll_interval  # at capacity: a finishing action wakes us
                elif seen < limit:
                    wait = self._idle_wait(hooks, group_ids)  # nothing more due now
                else:
                    wait = 0.0
                self._collect(wait)
            # leaving: whatever still runs goes back to pending (hard stop, or the grace period ran out); what
            # was handed to the pool but not started yet never starts
            never_started = {a.action_id for a in pool.cancel_pending()}
            self._collect(0)
            self._flush_unwritten()
            self.abandoned_threads = any(aid not in never_started for aid in self._inflight)
            self._release_inflight()
            self._flush_unwritten(final=True)
        finally:
            pool.shutdown(wait=not self.abandoned_threads)
        if self._heartbeats_on:
            self._guard(lambda: self._beat(stopped=True))
        log.info("worker stopped: %d taken, %d complete, %d failed, %d released",
                 self.stats.taken, self.stats.completed, self.stats.failed, self.stats.released)
        return 1 if self._hard_stop else 0

    def _resolve_groups(self) -> list[int]:
        while True:
            try:
                return list(self.store.group_ids(self.settings.groups, create=True).values())
            except TransientStoreError as exc:
                self._outage(exc)
                if self._stopping:
                    return []
                time.sleep(min(5.0, self.settings.poll_interval))

    def _sendable(self, hooks: list[str]) -> list[str]:
        """``hooks`` minus those that call WhatsApp once the shared ApiGate is halted (auth error 190 and the like):
        they stay pending instead of each failing at once; the worker keeps serving the other hooks."""
        gate = getattr(getattr(self.services, "whatsapp", None), "gate", None)
        if gate is None or not getattr(gate, "halted", False):
            return hooks
        if not self._halt_noted:
            self._halt_noted = True
            log.error("WhatsApp sends are halted (%s): not taking %s any more; they stay pending until the worker "
                      "is restarted with a working access token", self._clean(str(gate.halt_reason or "")),
                      ", ".join(h for h in hooks if h in WHATSAPP_HOOKS) or "nothing")
        return [h for h in hooks if h not in WHATSAPP_HOOKS]

    def _take_batch(self, hooks: list[str], group_ids: list[int], limit: int) -> tuple[list[Action], int]:
        """Write the outcomes waiting to be written, then take up to ``limit`` due actions (two short transactions:
        finishing and taking never share one). Returns the actions taken and the number of candidates read."""
        with self.store.one_connection():
            if self._unwritten:
                self._record(self._unwritten)
            hooks = self._sendable(hooks)
            if not hooks:
                return [], 0
            taken = self.store.take_due(TakeRequest(hooks, group_ids, limit), CONTEXT, self.clock.now())
        self.stats.taken += len(taken.actions)
        return taken.actions, taken.seen

    def _busy(self) -> int:
        """Actions a pool thread is running now (taken, not finished)."""
        return len(self._inflight) - len(self._unwritten)

    def _free(self) -> int:
        """Pool threads not running an action (finished ones count as free even before they are written)."""
        return self.settings.concurrency - self._busy()

    def _low_water(self) -> int:
        return max(1, min(self.settings.batch_size, self.settings.concurrency) // 2)

    def _hold_for(self, free: int) -> float:
        """Seconds to keep collecting results before the next write+take (0: go now). While actions run and fewer
        than half the pool's threads are free, taking now would start a handful of actions for the fixed cost of
        a whole batch; but no outcome waits longer than ``MAX_HOLD_S`` to be written."""
        if self._busy() <= 0 or free >= self._low_water():
            return 0.0
        if not self._unwritten:
            return self.settings.poll_interval  # a finishing action wakes us
        left = MAX_HOLD_S - (time.monotonic() - self._unwritten[0].finished)
        return max(0.0, left)

    def _idle_wait(self, hooks: list[str], group_ids: list[int]) -> float:
        """Seconds (real time) to wait: the poll interval, or less when the next action is due sooner."""
        wait = self.settings.poll_interval
        hooks = self._sendable(hooks)
        if not hooks:
            return wait
        try:
            nxt = self.store.next_due_at(hooks, group_ids)
        except TransientStoreError as exc:
            self._outage(exc)
            return wait
        if nxt is not None:
            delta = (nxt - self.clock.now()).total_seconds() / self.clock.speed
            wait = max(0.0, min(wait, delta + 0.001))
        return wait

    def _guard(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except TransientStoreError as exc:
            self._outage(exc)
        except Exception:  # noqa: BLE001 - a side task must never stop the worker
            log.exception("worker side task failed")

    # ------------------------------------------------------------------ heartbeats and orphans
    def _beat(self, stopped: bool = False) -> None:
        from wch_bridge import __version__

        self.heartbeats.beat(
            self.worker_id, host=socket.gethostname(), pid=os.getpid(), version=__version__,
            started_at=self._started_at, now=self.clock.now(), in_hand_ids=list(self._inflight), stopped=stopped,
            groups=self.settings.groups, hooks=self.hooks,
        )
        self._last_beat = time.monotonic()
        if not stopped:
            self._share_send_rate()

    def _share_send_rate(self) -> None:
        """``messages_per_second`` is the site's limit (one WhatsApp phone number), not each process's: with K
        live workers (heartbeats) each sends at most 1/K of it. Re-checked at every heartbeat."""
        gate = getattr(getattr(self.services, "whatsapp", None), "gate", None)
        total = float(self.settings.messages_per_second or 0)
        if gate is None or not hasattr(gate, "set_rate") or total <= 0:
            return
        live = max(1, self.heartbeats.live_count(self.clock.now(), self.settings.orphan_timeout))
        share = total / live
        if abs(share - gate.messages_per_second) > 1e-9:
            gate.set_rate(share)
            log.info("send limit: %g msg/s shared by %d live worker(s): %g msg/s for this one", total, live, share)

    def _guarded_value(self, fn: Callable[[], T], default: T) -> T:
        """``fn()``, or ``default`` when it fails (a start-up probe must never stop the worker)."""
        try:
            return fn()
        except Exception:  # noqa: BLE001
            return default

    def _maintenance(self, hooks: list[str], group_ids: list[int]) -> None:
        s = self.settings
        if not self._heartbeats_on:
            return
        if time.monotonic() - self._last_beat >= s.heartbeat_interval / self.clock.speed:
            self._guard(self._beat)
        if time.monotonic() - self._last_orphan_check >= max(0.5, s.poll_interval) and not self._stopping:
            self._last_orphan_check = time.monotonic()
            self._guard(lambda: self.recover_orphans(hooks, group_ids))
            self._guard(self._sweep_ledger)

    def _sweep_ledger(self) -> None:
        """Ledger rows a dead run left ``sending`` longer than ``stale_after`` become ``unknown`` (in doubt);
        checked at most every :data:`SWEEP_EVERY` seconds (a row needs 300 s to become stale)."""
        ledger = getattr(self.services, "ledger", None)
        if self._last_sweep and time.monotonic() - self._last_sweep < SWEEP_EVERY / self.clock.speed:
            return
        self._last_sweep = time.monotonic()
        if ledger is not None and hasattr(ledger, "sweep_stale"):
            n = ledger.sweep_stale()
            if n:
                log.warning("%d message(s) left on the wire by a stopped run are now 'unknown' (in doubt, not "
                            "re-sent): wch-bridge messages list --status unknown", n)

    def recover_orphans(self, hooks: list[str], group_ids: list[int]) -> int:
        """Take over the in-progress actions of dead workers (heartbeat older than ``orphan_timeout``):
        ledger-protected hooks and upserts go back to ``pending``; any other hook is failed with a clear reason."""
        now = self.clock.now()
        limit = self.settings.orphan_timeout
        done = 0
        recovered: list[int] = []
        for aid, hook in self.heartbeats.orphans(hooks, group_ids, now, limit):
            if aid in self._inflight:
                continue
            if hook in self.rerunnable:
                ok = self.store.release(aid, f"action reset via {CONTEXT}: its worker stopped sending heartbeats for "
                                             f"{int(limit)} s; it will run again (sends already made are not repeated)")
            else:
                ok = self.store.fail_running(aid, f"action failed via {CONTEXT}: its worker stopped sending heartbeats "
                                                  f"for {int(limit)} s while it ran; not re-run automatically because "
                                                  f"{hook} is not known to be safe to repeat (retry it with "
                                                  f"`wch-bridge jobs retry {aid}`)")
            if ok:
                done += 1
                recovered.append(aid)
                log.warning("recovered orphaned action %d (%s) from a dead worker", aid, hook)
        if recovered:  # the dead worker's row no longer shows them "in hand"
            self.heartbeats.forget(recovered, now, limit)
        return done

    # ------------------------------------------------------------------ outages
    def _outage(self, exc: Exception) -> None:
        if isinstance(exc, LockBusyError):  # rows someone held just then: not an outage, try again shortly
            log.debug("rows busy, trying again: %s", self._clean(str(exc)))
            return
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("database unavailable, retrying with back-off: %s", self._clean(str(exc)))

    def _outage_over(self) -> None:
        if self._outage_since is not None:
            log.info("database reachable again after %.1fs", time.monotonic() - self._outage_since)
            self._outage_since = None
            self.store.queue_is_stale()  # rows may have changed while it was away: reconcile the pick-up queue

    # ------------------------------------------------------------------ running one action (pool thread)
    def _run_one(self, action: Action) -> None:
        started = time.monotonic()
        res = Result(action=action, kind="failed", started=started)
        try:
            res = self._execute(action, res)
        except BaseException as exc:  # noqa: BLE001 - nothing a handler does may kill the worker
            res.kind, res.message = "failed", self._clean(f"{type(exc).__name__}: {exc}")
        res.finished = time.monotonic()
        res.finished_at = self.clock.now()
        self._results.put(res)

    def _execute(self, action: Action, res: Result) -> Result:
        try:
            decoded = argscodec.decode_args(action.args_json)
        except ActionDataError as exc:
            res.message = self._clean(f"invalid args: {exc}")
            return res
        try:
            res.schedule = phpser.parse_schedule(action.schedule)
        except ActionDataError as exc:
            res.message = self._clean(f"invalid schedule: {exc}")
            return res
        handler = self.registry.get(action.hook)
        if handler is None:
            res.message = no_callback_message(action.hook)
            return res
        args, meta = argscodec.unwrap_payload(decoded)
        job = Job(action=action, args=args, services=self.services, stop=self.stop_event)
        try:
            outcome = handler(job) or Outcome()
        except ShutdownRequested as exc:
            if self.stop_event.is_set():
                res.kind, res.message = "release", self._clean(str(exc))
            elif isinstance(exc.__cause__, TransientStoreError):  # handlers.common.release_on_db_outage
                self._lost_database(action, res, exc)
            else:  # only a stopping worker puts work back; anything else would loop
                res.message = self._clean(f"handler stopped without a shutdown: {exc}")
            return res
        except TransientStoreError as exc:
            self._lost_database(action, res, exc)
            return res
        except WchBridgeError as exc:
            res.message = self._clean(str(exc) or type(exc).__name__)
            return res
        except Exception as exc:  # noqa: BLE001
            log.exception("handler for %s raised on action %d", action.hook, action.action_id)
            res.message = self._clean(f"{type(exc).__name__}: {exc}")
            return res
        res.kind, res.outcome, res.message = "complete", outcome, self._clean(outcome.message)
        return res

    def _lost_database(self, action: Action, res: Result, exc: Exception) -> None:
        """The database went away while the handler ran. A hook that is safe to run again (ledger / upsert) goes
        back to pending once the database is back; anything else, or one that keeps hitting it, fails."""
        if action.hook in self.rerunnable and action.attempts < MAX_TRANSIENT_RERUNS:
            res.kind = "release"
            text = str(exc) if isinstance(exc, ShutdownRequested) else f"database unavailable while it ran ({exc}); " \
                                                                        "it will run again"
            res.message = self._clean(text)
        else:
            res.kind, res.message = "failed", self._clean(str(exc) or type(exc).__name__)

    def _clean(self, text: str) -> str:
        """One line, bounded, secrets removed: safe for AS's log table and our own logs."""
        text = " ".join(str(text).split())
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text[:MAX_MESSAGE]

    # ------------------------------------------------------------------ recording outcomes (main thread)
    def _collect(self, block_for: float) -> None:
        """Move finished results to ``_unwritten`` (written by the next take, or ``_flush_unwritten``). Waits up to
        ``block_for`` for the first one, then lingers up to ``LINGER_S`` for the rest of a burst while fewer than
        half the pool's threads are free."""
        try:
            if block_for > 0:
                self._unwritten.append(self._results.get(timeout=block_for))
                deadline = time.monotonic() + LINGER_S
                while self._free() < self._low_water():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._unwritten.append(self._results.get(timeout=left))
            while True:
                self._unwritten.append(self._results.get_nowait())
        except queue.Empty:
            pass

    def _flush_unwritten(self, final: bool = False) -> None:
        attempts = 0
        while self._unwritten:
            try:
                self._record(self._unwritten)
                self._outage_over()
                if not final or not self._unwritten:
                    return
                attempts += 1  # a row was locked by someone just then: try again shortly
                if attempts > 600 or self._hard_stop:
                    return
                time.sleep(0.05)
                continue
            except TransientStoreError as exc:
                self._outage(exc)
                attempts += 1
                if not final or attempts > 60 or self._hard_stop:
                    return
                time.sleep(min(5.0, 0.25 * attempts))

    def _record(self, results: list[Result]) -> None:
        """Write outcomes. Follow-ups (retries) and their log lines go first, so a crash between the two steps leaves
        the action in-progress (recovered later) rather than complete without its retry. An outcome whose row
        someone held locked just then stays in ``results`` and is written with the next batch."""
        now = self.clock.now()
        for r in results:
            if r.kind == "complete" and not r.follow_ups_done and r.outcome is not None:
                self._write_follow_ups(r, now)
                r.follow_ups_done = True
        releases = [r for r in results if r.kind == "release"]
        for r in releases:
            if self.store.release(r.action.action_id, f"action released via {CONTEXT}: {r.message}", now):
                self.stats.released += 1
        finishing = [r for r in results if r.kind != "release"]
        answer = self.store.finish(
            [(r.action.action_id, r.kind == "complete", r.message) for r in finishing], CONTEXT, now
        ) if finishing else {}
        written = [r for r in finishing if r.action.action_id in answer]
        for r in written:
            status_found = answer[r.action.action_id]
            if status_found is not None:
                self.stats.not_recorded += 1
                log.warning("action %d (%s) finished %s but was changed meanwhile to %r; left as it is",
                            r.action.action_id, r.action.hook, r.kind, status_found)
            elif r.kind == "complete":
                self.stats.completed += 1
            else:
                self.stats.failed += 1
                log.warning("action %d (%s) failed: %s", r.action.action_id, r.action.hook, r.message)
            key = (r.action.hook, r.kind)
            self.stats.by_hook[key] = self.stats.by_hook.get(key, 0) + 1
        for r in written:
            if r.schedule is not None and getattr(r.schedule, "is_recurring", False):
                self._schedule_next(r, now)
        done = written + releases
        results[:] = [r for r in finishing if r.action.action_id not in answer]  # busy rows: next time
        for r in done:
            self._inflight.pop(r.action.action_id, None)
            if self.on_result:
                try:
                    self.on_result(r)
                except Exception:  # noqa: BLE001
                    log.exception("on_result callback failed")

    def _write_follow_ups(self, r: Result, now: datetime) -> None:
        assert r.outcome is not None
        lines = list(r.outcome.log_lines)
        for fu in r.outcome.follow_ups:
            new_id = self.schedule_action(fu, parent=r.action, now=now)
            what = fu.purpose or "follow-up"
            lines.append(f"{what} scheduled as action #{new_id} ({fu.hook}, due in {int(fu.delay_seconds)} s)")
        if lines:
            self.store.log_many([(r.action.action_id, self._clean(line)) for line in lines], now)

    def schedule_action(self, fu: NewAction, *, parent: Action | None, now: datetime) -> int:
        args, extended = argscodec.encode_args(fu.args)
        when = now + timedelta(seconds=fu.delay_seconds)
        sched = schedules.SimpleSchedule(_ts(when))
        row = NewRow(
            hook=fu.hook,
            scheduled_date_gmt=when,
            schedule=phpser.serialize_schedule(sched),
            args=args,
            extended_args=extended,
            group=fu.group if fu.group is not None else (parent.group if parent else self.settings.groups[0]),
            priority=fu.priority if fu.priority is not None else (parent.priority if parent else 10),
        )
        return self.store.insert_action(row, now=now)

    def _schedule_next(self, r: Result, now: datetime) -> None:
        """AS ``schedule_next_instance``: a new row, same hook/args/group/priority, next date from the finish time."""
        try:
            nxt = schedules.next_instance(r.schedule, _ts(r.finished_at or now))
            a = r.action
            row = NewRow(
                hook=a.hook,
                scheduled_date_gmt=nxt.scheduled_at(),
                schedule=phpser.serialize_schedule(nxt),
                args=a.args or "[]",
                extended_args=a.extended_args,
                group=a.group,
                priority=a.priority,
            )
            self.store.insert_action(row, now=now)
        except TransientStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - same log line as AS's failed_to_schedule_next_instance
            self.store.log(r.action.action_id,
                           self._clean(f"There was a failure scheduling the next instance of this action: {exc}"), now)

    # ------------------------------------------------------------------ long runs and leaving
    def _touch_long_running(self) -> None:
        interval = self.settings.touch_interval / self.clock.speed
        if not self._inflight or time.monotonic() - self._last_touch < interval:
            return
        self._last_touch = time.monotonic()
        cutoff = time.monotonic() - interval
        ids = [aid for aid, (_a, started) in self._inflight.items() if started <= cutoff]
        if ids:
            self._guard(lambda: self.store.touch(ids))

    def _release_inflight(self) -> None:
        finished = {r.action.action_id for r in self._unwritten}  # ran to the end: written by the final flush
        for aid in list(self._inflight):
            if aid in finished:
                continue
            try:
                if self.store.release(aid, f"action released via {CONTEXT}: worker stopped before it finished; it will run again"):
                    self.stats.released += 1
            except TransientStoreError as exc:
                self._outage(exc)
            self._inflight.pop(aid, None)


def _ts(dt: datetime) -> int:
    """Naive UTC datetime -> Unix seconds."""
    from datetime import UTC

    return int(dt.replace(tzinfo=UTC).timestamp())
