"""Running one action, with no database: decode its args and schedule, resolve the handler, run it and classify
what happened as a :class:`Result` (``complete``, ``failed`` or ``release``). The loop writes results later."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wch_bridge import argscodec, phpser
from wch_bridge.errors import ActionDataError, ShutdownRequested, TransientStoreError, WchBridgeError
from wch_bridge.handlers.base import Handler, Job, Services
from wch_bridge.models import Action, Outcome
from wch_bridge.timeutil import Clock

log = logging.getLogger("wch_bridge.worker")

MAX_MESSAGE = 1000
#: A rerunnable action whose handler lost the database goes back to pending until it has started this many times.
MAX_TRANSIENT_RERUNS = 10


def no_callback_message(hook: str) -> str:
    return f"Scheduled action for {hook} will not be executed as no callbacks are registered."


def clean_message(text: str, secrets: tuple[str, ...] = ()) -> str:
    """One line, bounded, secrets removed: safe for AS's log table and our own logs."""
    text = " ".join(str(text).split())
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:MAX_MESSAGE]


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
class Executor:
    """Runs actions on pool threads: ``run`` never raises and stamps the times; ``execute`` is the classification."""

    registry: Mapping[str, Handler]
    services: Services
    stop: threading.Event
    clock: Clock
    rerunnable: frozenset[str] = frozenset()
    secrets: tuple[str, ...] = field(default=())

    def clean(self, text: str) -> str:
        return clean_message(text, self.secrets)

    def run(self, action: Action) -> Result:
        """``execute`` that never raises, with start and finish times (monotonic and the clock's)."""
        res = Result(action=action, kind="failed", started=time.monotonic())
        try:
            res = self.execute(action, res)
        except BaseException as exc:  # noqa: BLE001 - nothing a handler does may kill the worker
            res.kind, res.message = "failed", self.clean(f"{type(exc).__name__}: {exc}")
        res.finished = time.monotonic()
        res.finished_at = self.clock.now()
        return res

    def execute(self, action: Action, res: Result | None = None) -> Result:
        """Decode, resolve the handler, run it, classify. ``res`` (filled in place) defaults to a new failed one."""
        if res is None:
            res = Result(action=action, kind="failed", started=time.monotonic())
        try:
            decoded = argscodec.decode_args(action.args_json)
        except ActionDataError as exc:
            res.message = self.clean(f"invalid args: {exc}")
            return res
        try:
            res.schedule = phpser.parse_schedule(action.schedule)
        except ActionDataError as exc:
            res.message = self.clean(f"invalid schedule: {exc}")
            return res
        handler = self.registry.get(action.hook)
        if handler is None:
            res.message = no_callback_message(action.hook)
            return res
        args, meta = argscodec.unwrap_payload(decoded)
        job = Job(action=action, args=args, services=self.services, stop=self.stop)
        return self._call(handler, job, res)

    def _call(self, handler: Callable[[Job], Outcome | None], job: Job, res: Result) -> Result:
        action = job.action
        try:
            outcome = handler(job) or Outcome()
        except ShutdownRequested as exc:
            if self.stop.is_set():
                res.kind, res.message = "release", self.clean(str(exc))
            elif isinstance(exc.__cause__, TransientStoreError):  # handlers.common.release_on_db_outage
                self._lost_database(action, res, exc)
            else:  # only a stopping worker puts work back; anything else would loop
                res.message = self.clean(f"handler stopped without a shutdown: {exc}")
            return res
        except TransientStoreError as exc:
            self._lost_database(action, res, exc)
            return res
        except WchBridgeError as exc:
            res.message = self.clean(str(exc) or type(exc).__name__)
            return res
        except Exception as exc:  # noqa: BLE001
            log.exception("handler for %s raised on action %d", action.hook, action.action_id)
            res.message = self.clean(f"{type(exc).__name__}: {exc}")
            return res
        res.kind, res.outcome, res.message = "complete", outcome, self.clean(outcome.message)
        return res

    def _lost_database(self, action: Action, res: Result, exc: Exception) -> None:
        """The database went away while the handler ran. A hook that is safe to run again (ledger / upsert) goes
        back to pending once the database is back; anything else, or one that keeps hitting it, fails."""
        if action.hook in self.rerunnable and action.attempts < MAX_TRANSIENT_RERUNS:
            res.kind = "release"
            text = (
                str(exc)
                if isinstance(exc, ShutdownRequested)
                else f"database unavailable while it ran ({exc}); it will run again"
            )
            res.message = self.clean(text)
        else:
            res.kind, res.message = "failed", self.clean(str(exc) or type(exc).__name__)
