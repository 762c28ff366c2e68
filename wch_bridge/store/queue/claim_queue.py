"""The bridge's pick-up queue: what may be due among the served hooks, in Action Scheduler's claim order, kept in a
table of the bridge's own (``{prefix}wch_bridge_queue``), so that picking work never scans or sorts Action
Scheduler's table and the bridge adds no index there (any index on AS's tables changes PHP's own plans).

How it is kept true (every read of Action Scheduler's table here is a plain, non-locking read; rows are copied on the
server, ``INSERT … SELECT`` of the candidates the queue lacks, never through Python: ``TransitionSql.queue_copy``):

- **feed**: new rows, found by a range read on AS's primary key above the highest id seen (``high_water``);
- **tail**: about a second later the ids fed since the previous tail are read once more, for inserts that
  committed after a higher id was already seen (auto-increment ids are handed out before commit);
- **reconcile**: at start, after an outage and every ``RECONCILE_EVERY_S``, the pending rows of the served hooks are
  read through AS's own indexes and missing ones are added; queue rows whose AS row
  is no longer pending are found by a plain read joining AS's rows by primary key and dropped by id (a claim PHP
  released, a row an admin canceled, anything the other passes missed).

The queue is only a hint. A worker takes rows out of it (``claim``: workers get disjoint rows) and then starts them with the guarded UPDATE on AS's row, which
alone decides. Rows it could not start because someone else held the row lock go back (``put_back``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from wch_bridge.store.engine import ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, mysql_errno
from wch_bridge.store.held_connection import HeldConnection
from wch_bridge.store.queue.transition_sql import TransitionSql
from wch_bridge.timeutil import fmt, parse_db_date

#: Ids of AS's table covered by one feed at most (the rest waits for the next poll; the queue already holds plenty).
FEED_ROWS = 20_000
#: While a drain finds candidates in the queue, new rows are fed at most this often (priority order stays fresh).
FEED_EVERY_S = 0.2
#: Ids fed are read once more this long after (late commits).
TAIL_EVERY_S = 1.0
#: A full reconciling pass this often (and at start and after an outage).
RECONCILE_EVERY_S = 60.0
#: Statement size for inserts and deletes on the queue table.
CHUNK = 500


class ClaimQueue:
    """One per ``ActionStore`` (per process). Thread-safe; the worker's main thread is its only regular user."""

    def __init__(self, conns: HeldConnection, sql: TransitionSql, *, mariadb: bool, skip_locked: bool) -> None:
        self.conns = conns
        self.sql = sql
        # MariaDB: plain read + DELETE … RETURNING (its SKIP LOCKED misbehaves with a zero lock-wait timeout);
        # MySQL: a locking read of the head; SQLite: plain (one writer at a time)
        self.returning = sql.mysql and mariadb
        self.lock_mode = "" if not sql.mysql or mariadb else ("skip" if skip_locked else "wait")
        self.high_water: int | None = None  # None: not reconciled yet
        self._tail_from = 0
        self._tail_mark = 0
        self._last_tail = 0.0
        self._last_feed = 0.0
        self._last_reconcile = float("-inf")
        self._hooks: frozenset[str] = frozenset()
        self._groups: frozenset[int] = frozenset()
        self._lock = threading.Lock()
        self._gave_up = False  # a change to the queue met a held row (``_without_waiting``)

    # ------------------------------------------------------------------ keeping it true
    def refresh(self, hooks: Iterable[str], group_ids: Iterable[int], *, force: bool = False,
                eager: bool = True) -> None:
        """Feed new rows; re-read the tail when due; reconcile when due, forced, or when the scope grew. Not
        ``eager``: skip the feed when it ran less than ``FEED_EVERY_S`` ago (a drain that still has candidates)."""
        hooks, gids = frozenset(hooks), frozenset(int(g) for g in group_ids)
        with self._lock:
            grew = not (hooks <= self._hooks and gids <= self._groups)
            if grew:
                self._hooks |= hooks
                self._groups |= gids
            now = time.monotonic()
            if force or grew or self.high_water is None or now - self._last_reconcile >= RECONCILE_EVERY_S:
                self._reconcile()
                self._last_reconcile = now
            if eager or now - self._last_feed >= FEED_EVERY_S:
                self._feed()
                self._last_feed = now
            if now - self._last_tail >= TAIL_EVERY_S:
                self._tail()
                self._last_tail = now
            if self._gave_up:  # a change met a row another worker held: reconcile on the next refresh
                self._gave_up = False
                self.mark_stale()

    def mark_stale(self) -> None:
        """Reconcile on the next refresh (after an outage: rows may have changed while the database was away)."""
        self._last_reconcile = float("-inf")

    def _scope(self) -> tuple[list[str], list[int]]:
        return sorted(self._hooks), sorted(self._groups)

    def _copy(self, low: int, high: int) -> None:
        """Copy the candidates among ids in (low, high] into the queue, on the server."""
        hooks, groups = self._scope()
        if hooks and groups and high > low:
            self._without_waiting(self.sql.queue_copy(len(hooks), len(groups), True), (low, high, *hooks, *groups))

    def _feed(self) -> None:
        assert self.high_water is not None
        with self.conns.tx() as conn:
            end = conn.exec_driver_sql(self.sql.feed_end, (self.high_water, FEED_ROWS)).scalar()
        if end is not None:
            self._copy(self.high_water, int(end))
            self.high_water = int(end)

    def _tail(self) -> None:
        """Read (previous mark, mark] once more, then move the marks: each id is re-read once, a second later."""
        self._copy(self._tail_from, self._tail_mark)
        self._tail_from, self._tail_mark = self._tail_mark, self.high_water or 0

    def _reconcile(self) -> None:
        hooks, groups = self._scope()
        with self.conns.tx() as conn:
            top = int(conn.exec_driver_sql(self.sql.max_id).scalar() or 0)
        if hooks and groups:
            self._without_waiting(self.sql.queue_copy(len(hooks), len(groups), False), (*hooks, *groups))
            with self.conns.tx() as conn:
                stale = [int(r[0]) for r in conn.exec_driver_sql(self.sql.queue_stale(len(hooks), len(groups)),
                                                                 (*hooks, *groups, top))]
            self._delete(stale)
        if self.high_water is None:
            self.high_water = top
            self._tail_from = self._tail_mark = top

    # ------------------------------------------------------------------ taking and giving back
    def claim(self, hooks: Sequence[str], group_ids: Sequence[int], now: datetime, limit: int) -> list[int]:
        """Take up to ``limit`` due ids out of the queue (answered in claim order), so that two workers never get the
        same id (the caller starts them with the guarded UPDATE and puts back what it could not start).
        ``claim_with_rows`` says how."""
        return self.claim_with_rows(hooks, group_ids, now, limit)[0]

    def claim_with_rows(self, hooks: Sequence[str], group_ids: Sequence[int], now: datetime,
                        limit: int) -> tuple[list[int], dict[int, Any] | None]:
        """``claim``, answering also AS's rows of the ids taken (``ACTION_COLUMNS``; an id AS no longer has is
        missing), or None where they were not read with the head.

        One short transaction: a read of the head of the queue (pinned to its claim-order index), then the ids are
        deleted. On MariaDB and SQLite the head is a plain read joined to AS's rows by primary key; MariaDB deletes
        with ``DELETE … RETURNING``, which answers exactly the rows this worker removed (another worker's
        uncommitted removal of the same row is waited for, briefly: the queue is the bridge's own table, PHP never
        touches it); SQLite's transaction holds the database's write lock. On MySQL the head is read ``FOR UPDATE``
        (SKIP LOCKED where the server has it), without AS's rows: that locking read must not reach AS's table."""
        joined = self.lock_mode == ""
        params = (fmt(now), *hooks, *[int(g) for g in group_ids], int(limit))
        head_sql = (self.sql.queue_head_rows(len(hooks), len(group_ids)) if joined
                    else self.sql.queue_due(len(hooks), len(group_ids), self.lock_mode))
        with self.conns.tx() as conn:
            head = list(conn.exec_driver_sql(head_sql, params))
            ids = [int(r[0]) for r in head]
            if ids and self.returning:
                gone = {int(r[0]) for r in conn.exec_driver_sql(self.sql.queue_take(len(ids)), tuple(ids))}
                ids = [i for i in ids if i in gone]
            elif ids:
                conn.exec_driver_sql(self.sql.queue_delete(len(ids)), tuple(ids))
        if not joined:
            return ids, None
        taken = set(ids)
        return ids, {int(r[0]): r[1:] for r in head if int(r[0]) in taken and r[1] is not None}

    def put_back(self, rows: Sequence[Sequence[Any]]) -> None:
        """Queue these ACTION_COLUMNS rows again (still pending, but locked by someone when we tried them; or
        released to pending by the bridge)."""
        self._insert([(int(r[0]), str(r[1]), int(r[8]), int(r[5]), int(r[9]),
                       fmt(r[3]) if isinstance(r[3], datetime) else str(r[3])) for r in rows])

    def next_due(self, hooks: Sequence[str], group_ids: Sequence[int]) -> datetime | None:
        if not hooks or not group_ids:
            return None
        with self.conns.tx() as conn:
            got = conn.exec_driver_sql(self.sql.queue_next_due(len(hooks), len(group_ids)),
                                       (*hooks, *[int(g) for g in group_ids])).scalar()
        return parse_db_date(got)

    def _insert(self, values: list[tuple[Any, ...]]) -> None:
        for i in range(0, len(values), CHUNK):
            self._without_waiting(self.sql.queue_insert, values[i:i + CHUNK])

    def _delete(self, ids: list[int]) -> None:
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            self._without_waiting(self.sql.queue_delete(len(part)), tuple(part))

    def _without_waiting(self, statement: str, params: Any) -> None:
        """One change to the queue in a transaction of its own, never waiting for a row another worker holds (the
        session's lock-wait timeout, 0 on MariaDB): when it meets one, the change is given up and the next refresh
        reconciles. The queue is a hint, so nothing is lost; a change that waited would hold its row locks
        meanwhile (seen: an INSERT IGNORE holding 272 of them for 5 s)."""
        try:
            with self.conns.tx() as conn:
                conn.exec_driver_sql(statement, params)
        except DBAPIError as exc:
            if mysql_errno(exc) not in (ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK):
                raise
            self._gave_up = True
