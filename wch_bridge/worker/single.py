"""``wch-bridge jobs run ID``: one action now, through the worker's own path: the guarded start (``store.take``:
pending and unclaimed only, ``action started via WCH Bridge``), the handler on a thread (``execute.Executor``)
while this process beats a heartbeat row holding it (so no live worker recovers it as an orphan) and touches it
when it runs long, then the outcome written like the loop writes it (``outcomes.OutcomeWriter``: follow-ups, the
guarded finish with AS's log line, the next instance of a recurring action)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from wch_bridge.handlers.base import Handler, Services
from wch_bridge.models import CONTEXT, Action
from wch_bridge.settings import Settings
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.workers import WorkerRegistry
from wch_bridge.worker.execute import Executor, Result
from wch_bridge.worker.outages import Outages
from wch_bridge.worker.outcomes import OutcomeWriter, WorkerStats


@dataclass(frozen=True)
class RunOutcome:
    """What happened: ``taken`` False when someone else started it first (nothing ran)."""

    taken: bool
    kind: str = ""  # complete | failed | release
    message: str = ""
    recorded: bool = False  # the outcome is written (False: the row was changed meanwhile, or left in-progress)
    seconds: float = 0.0


def _beat(reg: WorkerRegistry | None, worker_id: str, store: ActionStore, started: object, ids: list[int],
          stopped: bool = False) -> None:
    from wch_bridge import __version__

    if reg is None:
        return
    reg.beat(worker_id, host=socket.gethostname(), pid=os.getpid(), version=f"{__version__} (jobs run)",
             started_at=started, now=store.now(), in_hand_ids=ids, stopped=stopped)  # type: ignore[arg-type]


def run_now(store: ActionStore, registry: dict[str, Handler], services: Services, settings: Settings,
            action: Action, *, secrets: tuple[str, ...] = (), rerunnable: frozenset[str] = frozenset()) -> RunOutcome:
    """Start ``action`` (guarded), run its handler, record the outcome. The caller checked it is pending, served
    and has a handler."""
    heartbeats = WorkerRegistry(store.engine, store.t)
    reg = heartbeats if heartbeats.available() else None
    worker_id = f"{socket.gethostname()}:{os.getpid()}:run-{uuid.uuid4().hex[:8]}"
    started_at = store.now()
    if not store.take([action.action_id], CONTEXT, started_at):
        return RunOutcome(taken=False)
    aid = action.action_id
    _beat(reg, worker_id, store, started_at, [aid])
    executor = Executor(registry, services, threading.Event(), store.clock, rerunnable, secrets)
    box: list[Result] = []
    t0 = time.monotonic()
    thread = threading.Thread(target=lambda: box.append(executor.run(action)), name="wch-jobs-run", daemon=True)
    thread.start()
    last_touch = t0
    while thread.is_alive():
        thread.join(max(0.2, settings.heartbeat_interval))
        if thread.is_alive():
            _beat(reg, worker_id, store, started_at, [aid])
            if time.monotonic() - last_touch >= settings.touch_interval:
                store.touch([aid])
                last_touch = time.monotonic()
    result = box[0]
    written: list[Result] = []
    stats = WorkerStats()
    writer = OutcomeWriter(store, default_group=settings.groups[0], stats=stats, inflight={aid: (action, t0)},
                           outages=Outages(store.queue_is_stale, lambda s: s), clean=executor.clean,
                           notify=written.append)
    pending = [result]
    writer.flush(pending, final=True, hard=lambda: False)
    _beat(reg, worker_id, store, started_at, [], stopped=True)
    recorded = bool(written) and not stats.not_recorded
    return RunOutcome(taken=True, kind=result.kind, message=result.message, recorded=recorded,
                      seconds=time.monotonic() - t0)
