"""The bridge's pick-up queue: what may be due among the served hooks, in Action Scheduler's claim order, kept in a
table of the bridge's own (``{prefix}wch_bridge_queue``), so that picking work never scans or sorts Action
Scheduler's table and the bridge adds no index there (any index on AS's tables changes PHP's own plans).

How it is kept true (every read of Action Scheduler's table here is a plain, non-locking read):

- **feed**: new rows, found by a range read on AS's primary key above the highest id seen (``high_water``);
- **tail**: about a second later the ids fed since the previous tail are read once more, for inserts that
  committed after a higher id was already seen (auto-increment ids are handed out before commit);
- **reconcile**: at start, after an outage and every ``RECONCILE_EVERY_S``, the pending rows of the served hooks are
  read through AS's own ``hook_status_scheduled_date_gmt`` index; missing ones are added and rows that are no
  longer pending are dropped (a claim PHP released, a row an admin canceled, anything the other passes missed).

The queue is only a hint. A worker takes rows out of it (``claim``: workers get disjoint rows) and then starts them with the guarded UPDATE on AS's row, which
alone decides. Rows it could not start because someone else held the row lock go back (``put_back``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from wch_bridge.store.engine import ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, HeldConnection, mysql_errno
from wch_bridge.store.queue.transition_sql import TransitionSql
from wch_bridge.timeutil import fmt, parse_db_date

#: Rows read per page of the feed (a primary-key range).
FEED_PAGE = 1000
#: Pages read per refresh at most (the rest waits for the next poll; the queue already holds plenty).
FEED_PAGES = 20
#: While a drain finds candidates in the queue, new rows are fed at most this often (priority order stays fresh).
FEED_EVERY_S = 0.2
#: Ids fed are read once more this long after (late commits).
TAIL_EVERY_S = 1.0
#: A full reconciling pass this often (and at start and after an outage).
RECONCILE_EVERY_S = 60.0
#: Statement size for inserts and deletes on the queue table.
CHUNK = 500


def _row_values(r: Sequence[Any]) -> tuple[Any, ...]:
    """A FEED_COLUMNS row -> the queue table's (action_id, hook, group_id, priority, attempts, scheduled_date_gmt)."""
    when = r[7]
    return (int(r[0]), str(r[1]), int(r[4]), int(r[5]), int(r[6]),
            fmt(when) if isinstance(when, datetime) else str(when))


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

    def _candidate(self, r: Sequence[Any]) -> bool:
        return (r[2] == "pending" and int(r[3]) == 0 and r[1] in self._hooks and int(r[4]) in self._groups)

    def _scan(self, low: int, high: int, pages: int) -> int:
        """Feed the candidates among ids in (low, high]; return the highest id read (``low`` if none)."""
        top = low
        for _ in range(pages):
            with self.conns.tx() as conn:
                rows = conn.exec_driver_sql(self.sql.feed, (top, high, FEED_PAGE)).all()
            if not rows:
                break
            top = int(rows[-1][0])
            self._insert([_row_values(r) for r in rows if self._candidate(r)])
            if len(rows) < FEED_PAGE:
                break
        return top

    def _feed(self) -> None:
        assert self.high_water is not None
        self.high_water = self._scan(self.high_water, 2**63 - 1, FEED_PAGES)

    def _tail(self) -> None:
        """Read (previous mark, mark] once more, then move the marks: each id is re-read once, a second later."""
        if self._tail_mark > self._tail_from:
            self._scan(self._tail_from, self._tail_mark, 10**6)
        self._tail_from, self._tail_mark = self._tail_mark, self.high_water or 0

    def _reconcile(self) -> None:
        found: dict[int, tuple[Any, ...]] = {}
        with self.conns.tx() as conn:
            top = int(conn.exec_driver_sql(self.sql.max_id).scalar() or 0)
            for hook in sorted(self._hooks):
                for r in conn.exec_driver_sql(self.sql.pending_of_hook, (hook,)):
                    if int(r[4]) in self._groups:
                        found[int(r[0])] = _row_values(r)
            hooks, groups = sorted(self._hooks), sorted(self._groups)
            have = {int(r[0]) for r in conn.exec_driver_sql(self.sql.queue_ids(len(hooks), len(groups)),
                                                             (*hooks, *groups))}
        self._insert([found[i] for i in sorted(set(found) - have)])
        self._delete([i for i in sorted(have - set(found)) if i <= top])
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
