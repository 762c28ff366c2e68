"""An in-memory stand-in for ``ActionStore`` with the verbs the worker calls (in the spirit of procrastinate's
in-memory connector): enough to run the real :class:`wch_bridge.worker.Worker` loop with no database. It records
each take's limit and each finish, so tests can see the refill policy at work. It has no ``t`` (tables): the worker
must not need them."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from wch_bridge import phpser, schedules
from wch_bridge.models import Action
from wch_bridge.settings import Settings
from wch_bridge.store.queue.actions import NewRow, Taken, TakeRequest
from wch_bridge.store.queue.new_rows import unix_ts
from wch_bridge.timeutil import Clock, SiteTime


def settings(**changes: object) -> Settings:
    base = dict(
        dsn="sqlite://",
        prefix="wp_",
        once=True,
        poll_interval=0.05,
        concurrency=4,
        batch_size=10,
        grace_period=5.0,
    )
    base.update(changes)
    return Settings(**base)  # type: ignore[arg-type]


class FakeStore:
    prefix = "wp_"

    def __init__(self) -> None:
        self.clock = Clock()
        self.site = SiteTime.utc()
        self.rows: dict[int, Action] = {}
        self.logs: list[tuple[int, str]] = []
        self.takes: list[tuple[int, int]] = []  # (limit asked, actions started)
        self.finishes: list[list[tuple[int, bool, str]]] = []
        self.inserted: list[NewRow] = []
        self._lock = threading.Lock()
        self._next_id = 1

    # -- seeding and reading (tests)
    def add(self, hook: str, args: str = "[]", *, due: datetime | None = None, attempts: int = 0) -> int:
        when = due or self.clock.now() - timedelta(seconds=1)
        with self._lock:
            aid = self._next_id
            self._next_id += 1
            schedule = phpser.serialize_schedule(schedules.SimpleSchedule(unix_ts(when)))
            self.rows[aid] = Action(
                action_id=aid,
                hook=hook,
                status="pending",
                scheduled_date_gmt=when,
                args=args,
                schedule=schedule,
                group="wch",
                group_id=1,
                attempts=attempts,
            )
        return aid

    def status(self, aid: int) -> str:
        return self.rows[aid].status

    def messages(self, aid: int) -> list[str]:
        return [m for a, m in self.logs if a == aid]

    # -- the verbs the worker calls
    def leftover_bridge_indexes(self) -> list[str]:
        return []

    def group_ids(self, slugs: Sequence[str], *, create: bool = False) -> dict[str, int]:
        return {s: i + 1 for i, s in enumerate(slugs)}

    def refresh_queue(self, hooks: Sequence[str], group_ids: Sequence[int], *, force: bool = False) -> None:
        return None

    def queue_is_stale(self) -> None:
        return None

    @contextmanager
    def one_connection(self) -> Iterator[None]:
        yield

    def _due(self, hooks: Sequence[str]) -> list[Action]:
        now = self.clock.now()
        return [
            a
            for a in self.rows.values()
            if a.status == "pending"
            and a.hook in hooks
            and a.scheduled_date_gmt is not None
            and a.scheduled_date_gmt <= now
        ]

    def take_due(self, req: TakeRequest, context: str, now: datetime | None = None) -> Taken:
        with self._lock:
            due = self._due(req.hooks)[: req.limit]
            started = []
            for a in due:
                self.rows[a.action_id] = replace(a, status="in-progress", attempts=a.attempts + 1)
                started.append(a)
                self.logs.append((a.action_id, f"action started via {context}"))
            self.takes.append((req.limit, len(started)))
            return Taken(started, len(due))

    def finish(
        self, items: Sequence[tuple[int, bool, str]], context: str, now: datetime | None = None
    ) -> dict[int, str | None]:
        with self._lock:
            self.finishes.append(list(items))
            out: dict[int, str | None] = {}
            for aid, ok, message in items:
                self.rows[aid] = replace(self.rows[aid], status="complete" if ok else "failed", last_attempt_gmt=now)
                self.logs.append((aid, f"action {'complete' if ok else 'failed'} via {context}: {message}"))
                out[aid] = None
            return out

    def release(self, action_id: int, reason: str, now: datetime | None = None) -> bool:
        with self._lock:
            self.rows[action_id] = replace(self.rows[action_id], status="pending")
            self.logs.append((action_id, reason))
            return True

    def log(self, action_id: int, message: str, now: datetime | None = None) -> None:
        self.logs.append((action_id, message))

    def log_many(self, items: Sequence[tuple[int, str]], now: datetime | None = None) -> None:
        self.logs.extend(items)

    def insert_action(self, row: NewRow, *, unique: bool = False, now: datetime | None = None) -> int:
        self.inserted.append(row)
        return 1000 + len(self.inserted)

    def next_due_at(self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None) -> datetime | None:
        pending = [
            a.scheduled_date_gmt
            for a in self.rows.values()
            if a.status == "pending" and (hooks is None or a.hook in hooks) and a.scheduled_date_gmt
        ]
        return min(pending) if pending else None

    def touch(self, action_ids: Sequence[int], now: datetime | None = None) -> int:
        return len(action_ids)
