"""Writing outcomes through the store (main thread): follow-ups and their log lines first, then releases and the
batched finish, the per-hook counts, and the next instance of recurring actions. Also the last flush and the
release of whatever still runs when the worker leaves."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from wch_bridge import argscodec
from wch_bridge.errors import TransientStoreError
from wch_bridge.models import CONTEXT, Action, NewAction
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.queue.new_rows import next_instance_row, single_row
from wch_bridge.worker.execute import Result
from wch_bridge.worker.outages import Outages

log = logging.getLogger("wch_bridge.worker")


@dataclass
class WorkerStats:
    taken: int = 0
    completed: int = 0
    failed: int = 0
    released: int = 0
    not_recorded: int = 0
    by_hook: dict[tuple[str, str], int] = field(default_factory=dict)


class OutcomeWriter:
    """Writes results and keeps ``stats``; ``inflight`` (the loop's map) loses each action once it is written."""

    def __init__(
        self,
        store: ActionStore,
        *,
        default_group: str,
        stats: WorkerStats,
        inflight: dict[int, tuple[Action, float]],
        outages: Outages,
        clean: Callable[[str], str],
        notify: Callable[[Result], None],
    ) -> None:
        self.store = store
        self.clock = store.clock
        self.default_group = default_group
        self.stats = stats
        self.inflight = inflight
        self.outages = outages
        self.clean = clean
        self.notify = notify
        #: Log each failure here; off when ``notify`` logs it (``metrics.ActionObserver``): one line per failure.
        self.log_failures = True

    def record(self, results: list[Result]) -> None:
        """Write outcomes. Follow-ups (retries) and their log lines go first, so a crash between the two steps
        leaves the action in-progress (recovered later) rather than complete without its retry. An outcome whose
        row someone held locked just then stays in ``results`` and is written with the next batch."""
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
        answer = (
            self.store.finish(
                [(r.action.action_id, r.kind == "complete", r.message) for r in finishing], CONTEXT, now
            )
            if finishing
            else {}
        )
        written = [r for r in finishing if r.action.action_id in answer]
        for r in written:
            self._count(r, answer[r.action.action_id])
        for r in written:
            if r.schedule is not None and getattr(r.schedule, "is_recurring", False):
                self._schedule_next(r, now)
        done = written + releases
        results[:] = [r for r in finishing if r.action.action_id not in answer]  # busy rows: next time
        for r in done:
            self.inflight.pop(r.action.action_id, None)
            self.notify(r)

    def _count(self, r: Result, status_found: str | None) -> None:
        if status_found is not None:
            self.stats.not_recorded += 1
            log.warning(
                "action %d (%s) finished %s but was changed meanwhile to %r; left as it is",
                r.action.action_id,
                r.action.hook,
                r.kind,
                status_found,
            )
        elif r.kind == "complete":
            self.stats.completed += 1
        else:
            self.stats.failed += 1
            if self.log_failures:
                log.warning("action %d (%s) failed: %s", r.action.action_id, r.action.hook, r.message)
        key = (r.action.hook, r.kind)
        self.stats.by_hook[key] = self.stats.by_hook.get(key, 0) + 1

    def _write_follow_ups(self, r: Result, now: datetime) -> None:
        assert r.outcome is not None
        lines = list(r.outcome.log_lines)
        for fu in r.outcome.follow_ups:
            new_id = self.schedule_action(fu, parent=r.action, now=now)
            what = fu.purpose or "follow-up"
            lines.append(
                f"{what} scheduled as action #{new_id} ({fu.hook}, due in {int(fu.delay_seconds)} s)"
            )
        if lines:
            self.store.log_many([(r.action.action_id, self.clean(line)) for line in lines], now)

    def schedule_action(self, fu: NewAction, *, parent: Action | None, now: datetime) -> int:
        """Insert follow-up ``fu`` as a single action (its group and priority default to the parent's)."""
        args, extended = argscodec.encode_args(fu.args)
        row = single_row(
            fu.hook,
            now + timedelta(seconds=fu.delay_seconds),
            args=args,
            extended_args=extended,
            group=fu.group if fu.group is not None else (parent.group if parent else self.default_group),
            priority=fu.priority if fu.priority is not None else (parent.priority if parent else 10),
        )
        return self.store.insert_action(row, now=now)

    def _schedule_next(self, r: Result, now: datetime) -> None:
        """AS ``schedule_next_instance``: a new row, same hook/args/group/priority, the next date counted from ``now``,
        the time the finish was written as ``last_attempt_gmt`` (AS reads its clock after ``mark_complete``; counting
        from when the handler ended would put the next run up to a second less than one interval after it)."""
        try:
            self.store.insert_action(next_instance_row(r.action, r.schedule, now), now=now)
        except TransientStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - same log line as AS's failed_to_schedule_next_instance
            self.store.log(
                r.action.action_id,
                self.clean(f"There was a failure scheduling the next instance of this action: {exc}"),
                now,
            )

    def flush(self, unwritten: list[Result], *, final: bool = False, hard: Callable[[], bool]) -> None:
        """Write ``unwritten`` now. ``final``: keep trying (rows someone holds, a short outage) before leaving."""
        attempts = 0
        while unwritten:
            try:
                self.record(unwritten)
                self.outages.over()
                if not final or not unwritten:
                    return
                attempts += 1  # a row was locked by someone just then: try again shortly
                if attempts > 600 or hard():
                    return
                time.sleep(0.05)
                continue
            except TransientStoreError as exc:
                self.outages.failed(exc)
                attempts += 1
                if not final or attempts > 60 or hard():
                    return
                time.sleep(min(5.0, 0.25 * attempts))

    def release_unfinished(self, unwritten: list[Result]) -> None:
        """Leaving: every action still in flight that did not run to the end goes back to pending."""
        finished = {r.action.action_id for r in unwritten}  # ran to the end: written by the final flush
        for aid in list(self.inflight):
            if aid in finished:
                continue
            try:
                if self.store.release(
                    aid,
                    f"action released via {CONTEXT}: worker stopped before it finished; it will run again",
                ):
                    self.stats.released += 1
            except TransientStoreError as exc:
                self.outages.failed(exc)
            self.inflight.pop(aid, None)
