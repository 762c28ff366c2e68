"""Action Scheduler verbs on ``{prefix}actionscheduler_*``, writing every row exactly as AS does.

Taking work never uses a claim (so PHP's concurrency gate, ``get_claim_count``, never counts the bridge) and never
locks what it only reads. Candidates come from the bridge's own pick-up queue (``store.queue.claim_queue``, fed by plain
reads on AS's primary key); AS's rows are changed only by guarded UPDATEs pinned to the primary key
(``store.queue.guarded``: ``… WHERE action_id IN (…) AND status='pending' AND claim_id=0`` to start, ``status=
'in-progress'`` to finish), ids ascending, each in a short transaction of its own, never waiting for a lock (a
row someone holds is skipped and tried again later). The hot statements are fixed SQL text
(``store.queue.transition_sql``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from wch_bridge.errors import LockBusyError
from wch_bridge.models import Action, Status
from wch_bridge.store import schema
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.queue import guarded
from wch_bridge.store.queue.action_rows import ActionRows, NewRow, Stamp
from wch_bridge.store.queue.guarded import Applied, Step
from wch_bridge.store.queue.transition_sql import ACTION_COLUMNS

log = logging.getLogger("wch_bridge.store")

T = TypeVar("T")

__all__ = ["ActionStore", "NewRow", "Stamp", "TakeRequest", "Taken"]


@dataclass(frozen=True)
class TakeRequest:
    """Take up to ``limit`` due actions of these hooks and groups (``ActionStore.take_due``)."""

    hooks: Sequence[str]
    group_ids: Sequence[int]
    limit: int


@dataclass
class Taken:
    """What a take started (``actions``, as read before the start) and how many candidates it read."""

    actions: list[Action]
    seen: int


class ActionStore(ActionRows):
    """The Action Scheduler store: ``ActionRows`` plus the queue verbs, each a guarded UPDATE by primary key in a
    short transaction of its own."""

    @translate_errors
    def next_due_at(self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None) -> datetime | None:
        """When the next pending, unclaimed action of these hooks/groups is due (None: nothing pending), from the
        bridge's pick-up queue (fed first): cheap on every idle poll, whatever the size of AS's table."""
        if not hooks or not group_ids:
            return None
        with self.conns.held():
            self.queue.refresh(hooks, group_ids)
            return self.queue.next_due(list(hooks), [int(g) for g in group_ids])

    def _slugs(self, conn: Connection, group_ids: set[int]) -> dict[int, str]:
        missing = [gid for gid in group_ids if gid not in self._slug_by_id]
        if missing:
            q = f"SELECT group_id, slug FROM {self.t.groups.name} WHERE group_id IN ({self.sql.marks(len(missing))})"  # noqa: S608
            for gid, slug in conn.exec_driver_sql(q, tuple(missing)):
                self._slug_by_id[int(gid)] = str(slug)
        return self._slug_by_id

    def _actions_from_rows(self, rows: Sequence[Any]) -> list[Action]:
        """Rows of ``transition_sql.ACTION_COLUMNS`` -> Actions, as they were before they were started (group slugs from the
        cache ``_slugs`` filled)."""
        mapped = [dict(zip(ACTION_COLUMNS, r, strict=True)) for r in rows]
        return [self._action_from(m, self._slug_by_id.get(int(m["group_id"]), "")) for m in mapped]

    def _guarded(self, steps: Callable[[Connection], list[Step]],
                 then: Callable[[Connection, Applied], T]) -> T:
        """Run guarded by-key UPDATEs (``store.queue.guarded``) and ``then`` in one short transaction: the fast path first,
        one by one after a mismatch (a fresh transaction: the first was rolled back whole)."""
        for one_by_one in (False, True):
            try:
                with self.conns.tx() as conn:
                    applied = guarded.apply(conn, steps(conn), one_by_one=one_by_one,
                                            whole_tx_rolls_back=self.info.rollback_on_timeout)
                    return then(conn, applied)
            except guarded.Mismatch:
                continue
        raise AssertionError("unreachable: the one-by-one pass never raises Mismatch")

    def _start_ids(self, ids: Sequence[int], context: str, now: datetime,
                   read: dict[int, Any] | None = None) -> tuple[list[Action], list[Any]]:
        """Start these actions (AS's ``log_execution``, guarded on pending + unclaimed) with their started log lines.
        Returns the actions started (as read before the start, in the order given) and the rows that were busy
        (locked by someone else: still pending, not started). ``read``: the rows as just read (the queue's head
        read), used by the fast path; the row-by-row pass after a mismatch reads them again."""
        order = list(dict.fromkeys(int(i) for i in ids))  # the caller's order (claim order), once each
        ids = sorted(order)  # statements name ids ascending
        rows: dict[int, Any] = {}
        at = self.stamp(now)
        first = [read]

        def steps(conn: Connection) -> list[Step]:
            rows.clear()
            given = first.pop() if first else None
            if given is not None:
                rows.update(given)
            else:
                rows.update((int(r[0]), r) for r in conn.exec_driver_sql(self.sql.by_id(len(ids)), tuple(ids)))
            self._slugs(conn, {int(r[8]) for r in rows.values()})  # plain reads before any lock is taken
            ready = [i for i in ids if i in rows and rows[i][2] == Status.PENDING.value and int(rows[i][12]) == 0]
            return [Step(self.sql.start, at.attempt, ready)]

        def then(conn: Connection, applied: Applied) -> Applied:
            msg = f"action started via {context}"
            self._insert_logs(conn, [(i, msg) for i in applied.changed], at)
            return applied

        applied = self._guarded(steps, then)
        changed = set(applied.changed)
        started = self._actions_from_rows([rows[i] for i in order if i in changed])
        return started, [rows[i] for i in applied.busy]

    @retry_transient
    @translate_errors
    def take(self, action_ids: Sequence[int], context: str, now: datetime | None = None) -> list[int]:
        """Start the given actions exactly once: ``attempts+1``, ``in-progress``, ``last_attempt_*`` and the log
        line ``action started via <context>`` — only for rows still ``pending`` with ``claim_id=0``. Returns the ids
        this call took; the others were taken (or are held right now) by someone else."""
        if not action_ids:
            return []
        started, _busy = self._start_ids(action_ids, context, now or self.now())
        return [a.action_id for a in started]

    @retry_transient
    @translate_errors
    def take_due(self, req: TakeRequest, context: str, now: datetime | None = None) -> Taken:
        """Take up to ``req.limit`` due actions in AS's claim order: ids out of the bridge's pick-up queue
        (``ClaimQueue``, fed from AS's primary key), then the guarded start on AS's rows by primary key, each in a short
        transaction of its own. Rows someone else held just then go back to the queue. ``Taken.seen`` counts the
        candidates read (more than taken when someone else got some first)."""
        hooks, gids = list(req.hooks), [int(g) for g in req.group_ids]
        if not hooks or not gids or req.limit <= 0:
            return Taken([], 0)
        now = now or self.now()
        with self.conns.held():  # one connection for the whole take (kept for the next: no pool checkout)
            self.queue.refresh(hooks, gids, eager=False)
            taken = self._take_some(hooks, gids, now, req.limit, context)
            if taken.seen < req.limit:  # the queue ran short: feed it now and take the rest
                self.queue.refresh(hooks, gids)
                more = self._take_some(hooks, gids, now, req.limit - taken.seen, context)
                taken = Taken(taken.actions + more.actions, taken.seen + more.seen)
        return taken

    def _take_some(self, hooks: list[str], gids: list[int], now: datetime, limit: int, context: str) -> Taken:
        """Ids out of the queue (one short transaction; on MariaDB and SQLite read together with AS's rows), then
        the guarded start (another). The queue's rows and AS's rows are never locked by one transaction."""
        ids, read = self.queue.claim_with_rows(hooks, gids, now, limit)
        if not ids:
            return Taken([], 0)
        try:
            started, busy = self._start_ids(ids, context, now, read)
        except Exception:
            self.queue.mark_stale()  # the ids left the queue unstarted: the reconciling pass restores them
            raise
        if busy:
            self.queue.put_back(busy)
        return Taken(started, len(ids))

    @translate_errors
    def refresh_queue(self, hooks: Sequence[str], group_ids: Sequence[int], *, force: bool = False) -> None:
        """Bring the pick-up queue up to date now. ``force`` (the worker's start): create its table if missing and
        reconcile it with AS's table."""
        if force:
            schema.install_queue_table(self.engine, self.prefix)
        if hooks and group_ids:
            self.queue.refresh(hooks, group_ids, force=force)

    def queue_is_stale(self) -> None:
        """After a database outage: reconcile the pick-up queue on the next take."""
        self.queue.mark_stale()

    @retry_transient
    @translate_errors
    def finish(
        self, results: Sequence[tuple[int, bool, str]], context: str, now: datetime | None = None
    ) -> dict[int, str | None]:
        """Record outcomes: ``(action_id, ok, message)``. Success -> ``complete`` + ``last_attempt_*`` + log
        ``action complete via <context>``; failure -> ``failed`` + log ``action failed via <context>: <message>``.

        Each UPDATE is pinned to the primary key and guarded on ``status='in-progress'``: a row the PHP cleaner or
        an admin changed meanwhile is not overwritten. One short transaction of its own. Returns ``{action_id:
        None}`` when recorded, ``{action_id: <status found>}`` when the row had been changed; an id missing from the
        answer could not be written now (someone held its row lock just then): write it again later."""
        if not results:
            return {}
        now = now or self.now()
        at = self.stamp(now)
        ok_ids = sorted({aid for aid, ok, _ in results if ok})
        fail_ids = sorted({aid for aid, ok, _ in results if not ok})

        def steps(_conn: Connection) -> list[Step]:
            return [Step(self.sql.complete, at.attempt, ok_ids), Step(self.sql.fail, (), fail_ids)]

        def then(conn: Connection, applied: Applied) -> dict[int, str | None]:
            out: dict[int, str | None] = {aid: None for aid in applied.changed}
            if applied.unchanged:
                ids = applied.unchanged
                found = {int(k): v for k, v in conn.exec_driver_sql(self.sql.statuses(len(ids)), tuple(ids))}
                out.update({aid: str(found.get(aid, "deleted")) for aid in ids})
            logs: list[tuple[int, str]] = []
            for aid, ok, msg in results:
                if aid not in out:
                    continue  # busy: written later
                if out[aid] is not None:
                    logs.append((aid, f"WCH Bridge finished this action ({'complete' if ok else 'failed'}) but did "
                                      f"not record it: its status had been changed to '{out[aid]}' meanwhile"))
                else:
                    logs.append((aid, f"action complete via {context}" if ok else f"action failed via {context}: {msg}"))
            self._insert_logs(conn, logs, at)
            return out

        return self._guarded(steps, then)

    @retry_transient
    @translate_errors
    def touch(self, action_ids: Sequence[int], now: datetime | None = None) -> int:
        """Refresh ``last_attempt_*`` of running actions so PHP's cleaner (300 s failure period) leaves them be."""
        ids = sorted({int(i) for i in action_ids})
        if not ids:
            return 0
        now = now or self.now()
        return self._guarded(lambda _c: [Step(self.sql.touch, self.stamp(now).attempt, ids)],
                             lambda _c, applied: len(applied.changed))

    def release(self, action_id: int, reason: str, now: datetime | None = None) -> bool:
        """``in-progress`` -> ``pending`` (a stopped or dead worker's action, to be run again), with a log line.

        ``attempts`` keeps the count of starts; the re-run lands after fresh work in AS's claim order."""
        return self._leave_running(action_id, self.sql.release, reason, now)

    def fail_running(self, action_id: int, message: str, now: datetime | None = None) -> bool:
        """``in-progress`` -> ``failed`` with a log line (orphan recovery of hooks that are not safe to re-run)."""
        return self._leave_running(action_id, self.sql.fail, message, now)

    @retry_transient
    @translate_errors
    def _leave_running(self, action_id: int, build: Callable[[int], str], message: str,
                       now: datetime | None) -> bool:
        at = self.stamp(now or self.now())

        def then(conn: Connection, applied: Applied) -> bool:
            if not applied.changed:
                if applied.busy:
                    raise LockBusyError(f"action {action_id} is locked by another session; trying again")
                return False
            self._insert_logs(conn, [(action_id, message)], at)
            return True

        done = self._guarded(lambda _c: [Step(build, (), [int(action_id)])], then)
        if done and build == self.sql.release:  # back in the pick-up queue (else the reconciling pass adds it)
            with self.conns.tx() as conn:
                rows = conn.exec_driver_sql(self.sql.by_id(1), (action_id,)).all()
            self.queue.put_back(rows)
        return done

    @retry_transient
    @translate_errors
    def cancel(self, action_ids: Sequence[int], now: datetime | None = None) -> list[int]:
        """``pending`` -> ``canceled`` with AS's ``action canceled`` line; never touches other statuses. A row
        someone holds locked right now is tried again shortly (never waited for)."""
        ids = sorted({int(i) for i in action_ids})
        if not ids:
            return []
        at = self.stamp(now or self.now())

        def then(conn: Connection, applied: Applied) -> list[int]:
            if applied.busy:
                raise LockBusyError("a row to cancel is locked by another session; trying again")
            self._insert_logs(conn, [(i, "action canceled") for i in applied.changed], at)
            return sorted(applied.changed)

        return self._guarded(lambda _c: [Step(self.sql.cancel, (), ids)], then)
