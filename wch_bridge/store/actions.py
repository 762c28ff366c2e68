"""Action Scheduler verbs on ``{prefix}actionscheduler_*``, writing every row exactly as AS does.

Taking work never uses a claim (so PHP's concurrency gate, ``get_claim_count``, never counts the bridge) and never
locks what it only reads. Candidates come from the bridge's own pick-up queue (``store.claim_queue``, fed by plain
reads on AS's primary key); AS's rows are changed only by guarded UPDATEs pinned to the primary key
(``store.guarded``: ``… WHERE action_id IN (…) AND status='pending' AND claim_id=0`` to start, ``status=
'in-progress'`` to finish), ids ascending, each in a short transaction of its own, never waiting for a lock (a
row someone holds is skipped and tried again later). The hot statements are fixed SQL text
(``store.hotpath``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, insert, literal, or_, select
from sqlalchemy.engine import Connection, Engine, Row

from wch_bridge.errors import LockBusyError, StoreError
from wch_bridge.models import Action, LogEntry, Status
from wch_bridge.store import guarded, schema
from wch_bridge.store.claim_queue import ClaimQueue
from wch_bridge.store.engine import DbInfo, HeldConnection, retry_transient, translate_errors
from wch_bridge.store.guarded import Applied, Step
from wch_bridge.store.hotpath import TransitionSql
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import Clock, SiteTime, fmt, parse_db_date

log = logging.getLogger("wch_bridge.store")

T = TypeVar("T")


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


@dataclass(frozen=True)
class NewRow:
    """A fully encoded action row to insert (see ``argscodec.encode_args`` / ``phpser.serialize_schedule``)."""

    hook: str
    scheduled_date_gmt: datetime | None
    schedule: str
    args: str
    extended_args: str | None = None
    group: str = ""
    priority: int = 10


class ActionStore:
    """Reads and writes the four Action Scheduler tables (plus the ``wp_options`` values AS reads)."""

    def __init__(self, engine: Engine, prefix: str, *, clock: Clock | None = None, site: SiteTime | None = None):
        self.engine = engine
        self.info = DbInfo.probe(engine)
        self.clock = clock or Clock()
        self.t = Tables(prefix, has_priority=self._has_priority(prefix))
        self._site = site
        self._group_cache: dict[str, int] = {}
        self._slug_by_id: dict[int, str] = {}
        self.sql = TransitionSql(self.t, self.info.dialect, mariadb=self.info.is_mariadb)
        self.conns = HeldConnection(engine)
        self.queue = ClaimQueue(self.conns, self.sql, mariadb=self.info.is_mariadb, skip_locked=self.info.skip_locked)

    # ------------------------------------------------------------------ facts
    @property
    def prefix(self) -> str:
        return self.t.prefix

    def _has_priority(self, prefix: str) -> bool:
        try:
            from sqlalchemy import inspect

            cols = {c["name"] for c in inspect(self.engine).get_columns(f"{prefix}actionscheduler_actions")}
        except Exception:  # noqa: BLE001 - table missing: schema check reports it; assume the current schema
            return True
        return "priority" in cols

    @translate_errors
    def get_option(self, name: str) -> str | None:
        o = self.t.options
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(o.c.option_value).where(o.c.option_name == name)).scalar()
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - no options table (bare AS schema): behave as an empty site
            if "doesn't exist" in str(exc) or "no such table" in str(exc):
                return None
            raise

    @property
    def site(self) -> SiteTime:
        if self._site is None:
            self._site = SiteTime.from_options(self.get_option("timezone_string"), self.get_option("gmt_offset"))
        return self._site

    def now(self) -> datetime:
        return self.clock.now()

    def one_connection(self) -> Any:
        """Context: the store's short transactions in this block share one pooled connection (one checkout)."""
        return self.conns.held()

    def leftover_bridge_indexes(self) -> list[str]:
        """Indexes an earlier wch-bridge added to the actions table (``schema drop-indexes`` removes them)."""
        return schema.leftover_indexes(self.engine, self.prefix)

    # ------------------------------------------------------------------ groups
    @translate_errors
    def group_ids(self, slugs: Iterable[str], *, create: bool = False) -> dict[str, int]:
        """slug -> group_id. Duplicate slug rows are possible (no unique index): the lowest id wins, like PHP's
        first row in practice. With ``create``, missing groups are inserted as AS's ``create_group`` does."""
        g = self.t.groups
        out: dict[str, int] = {}
        for slug in slugs:
            if slug in self._group_cache:
                out[slug] = self._group_cache[slug]
                continue
            with self.engine.begin() as conn:
                gid = conn.execute(select(func.min(g.c.group_id)).where(g.c.slug == slug)).scalar()
                if gid is None and create:
                    gid = conn.execute(insert(g).values(slug=slug)).inserted_primary_key[0]
            if gid is not None:
                self._group_cache[slug] = int(gid)
                self._slug_by_id.setdefault(int(gid), slug)
                out[slug] = int(gid)
        return out

    # ------------------------------------------------------------------ reading
    def _action_cols(self) -> list[Any]:
        a, g = self.t.actions, self.t.groups
        return [a, func.coalesce(g.c.slug, "").label("group_slug")]

    def _row_to_action(self, row: Row[Any]) -> Action:
        m = row._mapping
        return Action(
            action_id=int(m["action_id"]),
            hook=m["hook"],
            status=m["status"],
            scheduled_date_gmt=m["scheduled_date_gmt"],
            scheduled_date_local=m["scheduled_date_local"],
            priority=int(m["priority"]) if self.t.has_priority else 10,
            args=m["args"],
            schedule=m["schedule"],
            group_id=int(m["group_id"]),
            group=m["group_slug"] or "",
            attempts=int(m["attempts"]),
            last_attempt_gmt=m["last_attempt_gmt"],
            last_attempt_local=m["last_attempt_local"],
            claim_id=int(m["claim_id"]),
            extended_args=m["extended_args"],
        )

    @translate_errors
    def fetch_due(
        self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None, now: datetime, limit: int
    ) -> list[Action]:
        """Due, unclaimed pending actions in AS's claim order: a plain, non-locking read (operators and tests; the
        worker takes work through ``take_due``)."""
        if (hooks is not None and not hooks) or (group_ids is not None and not group_ids) or limit <= 0:
            return []
        a, g = self.t.actions, self.t.groups
        q = (select(*self._action_cols()).select_from(a.outerjoin(g, a.c.group_id == g.c.group_id))
             .where(a.c.claim_id == 0, a.c.status == Status.PENDING.value, a.c.scheduled_date_gmt <= now))
        if hooks is not None:
            q = q.where(a.c.hook.in_(list(hooks)))
        if group_ids is not None:
            q = q.where(a.c.group_id.in_([int(x) for x in group_ids]))
        order = [a.c.priority] if self.t.has_priority else []
        q = q.order_by(*order, a.c.attempts, a.c.scheduled_date_gmt, a.c.action_id).limit(int(limit))
        with self.engine.connect() as conn:
            return [self._row_to_action(r) for r in conn.execute(q)]

    @translate_errors
    def next_due_at(self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None) -> datetime | None:
        """When the next pending, unclaimed action of these hooks/groups is due (None: nothing pending), from the
        bridge's pick-up queue (fed first): cheap on every idle poll, whatever the size of AS's table."""
        if not hooks or not group_ids:
            return None
        with self.conns.held():
            self.queue.refresh(hooks, group_ids)
            return self.queue.next_due(list(hooks), [int(g) for g in group_ids])

    @translate_errors
    def get_action(self, action_id: int) -> Action | None:
        a, g = self.t.actions, self.t.groups
        q = (
            select(*self._action_cols())
            .select_from(a.outerjoin(g, a.c.group_id == g.c.group_id))
            .where(a.c.action_id == action_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return self._row_to_action(row) if row else None

    @translate_errors
    def get_status(self, action_id: int) -> str | None:
        a = self.t.actions
        with self.engine.connect() as conn:
            return conn.execute(select(a.c.status).where(a.c.action_id == action_id)).scalar()

    @translate_errors
    def get_logs(self, action_id: int) -> list[LogEntry]:
        lg = self.t.logs
        q = select(lg).where(lg.c.action_id == action_id).order_by(lg.c.log_id)
        with self.engine.connect() as conn:
            return [
                LogEntry(r.log_id, r.action_id, r.message, r.log_date_gmt, r.log_date_local) for r in conn.execute(q)
            ]

    # ------------------------------------------------------------------ logging
    def _insert_logs(self, conn: Connection, items: Iterable[tuple[int, str]], now: datetime) -> None:
        """AS log rows (``ActionScheduler_DBLogger::log``), one multi-row INSERT."""
        g, local = fmt(now), fmt(self.site.as_local(now))
        rows = [(aid, msg, g, local) for aid, msg in items]
        if rows:
            conn.exec_driver_sql(self.sql.log_insert, rows)

    @retry_transient
    @translate_errors
    def log(self, action_id: int, message: str, now: datetime | None = None) -> None:
        """One AS log row (``ActionScheduler_DBLogger::log``)."""
        self.site  # noqa: B018 - resolve the time zone before the transaction (SQLite has one writer)
        with self.engine.begin() as conn:
            self._insert_logs(conn, [(action_id, message)], now or self.now())

    @retry_transient
    @translate_errors
    def log_many(self, items: Sequence[tuple[int, str]], now: datetime | None = None) -> None:
        self.site  # noqa: B018
        with self.engine.begin() as conn:
            self._insert_logs(conn, items, now or self.now())

    # ------------------------------------------------------------------ taking work
    def _slugs(self, conn: Connection, group_ids: set[int]) -> dict[int, str]:
        missing = [gid for gid in group_ids if gid not in self._slug_by_id]
        if missing:
            q = f"SELECT group_id, slug FROM {self.t.groups.name} WHERE group_id IN ({self.sql.marks(len(missing))})"  # noqa: S608
            for gid, slug in conn.exec_driver_sql(q, tuple(missing)):
                self._slug_by_id[int(gid)] = str(slug)
        return self._slug_by_id

    def _actions_from_rows(self, rows: Sequence[Any]) -> list[Action]:
        """Rows of ``hotpath.ACTION_COLUMNS`` -> Actions, as they were before they were started (group slugs from the
        cache ``_slugs`` filled)."""
        return [
            Action(
                action_id=int(r[0]), hook=r[1], status=r[2], scheduled_date_gmt=parse_db_date(r[3]),
                scheduled_date_local=parse_db_date(r[4]), priority=int(r[5]), args=r[6], schedule=r[7],
                group_id=int(r[8]), group=self._slug_by_id.get(int(r[8]), ""), attempts=int(r[9]),
                last_attempt_gmt=parse_db_date(r[10]), last_attempt_local=parse_db_date(r[11]), claim_id=int(r[12]),
                extended_args=r[13],
            )
            for r in rows
        ]

    def _guarded(self, steps: Callable[[Connection], list[Step]],
                 then: Callable[[Connection, Applied], T]) -> T:
        """Run guarded by-key UPDATEs (``store.guarded``) and ``then`` in one short transaction: the fast path first,
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
        stamp = (fmt(now), fmt(self.site.local(now)))
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
            return [Step(self.sql.start, stamp, ready)]

        def then(conn: Connection, applied: Applied) -> Applied:
            msg = f"action started via {context}"
            self._insert_logs(conn, [(i, msg) for i in applied.changed], now)
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
        self.site  # noqa: B018 - resolve the time zone before any transaction (SQLite has one writer)
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
        read: dict[int, Any] | None = None
        if self.queue.takes_rows:
            head = self.queue.take_rows(hooks, gids, now, limit)
            ids = [i for i, _ in head]
            read = {i: r for i, r in head if r is not None}
        else:
            ids = self.queue.claim(hooks, gids, now, limit)
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

    # ------------------------------------------------------------------ finishing
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
        self.site  # noqa: B018
        ok_ids = sorted({aid for aid, ok, _ in results if ok})
        fail_ids = sorted({aid for aid, ok, _ in results if not ok})
        stamp = (fmt(now), fmt(self.site.local(now)))

        def steps(_conn: Connection) -> list[Step]:
            return [Step(self.sql.complete, stamp, ok_ids), Step(self.sql.fail, (), fail_ids)]

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
            self._insert_logs(conn, logs, now)
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
        stamp = (fmt(now), fmt(self.site.local(now)))
        return self._guarded(lambda _c: [Step(self.sql.touch, stamp, ids)],
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
        now = now or self.now()
        self.site  # noqa: B018

        def then(conn: Connection, applied: Applied) -> bool:
            if not applied.changed:
                if applied.busy:
                    raise LockBusyError(f"action {action_id} is locked by another session; trying again")
                return False
            self._insert_logs(conn, [(action_id, message)], now)
            return True

        done = self._guarded(lambda _c: [Step(build, (), [int(action_id)])], then)
        if done and build == self.sql.release:  # back in the pick-up queue (else the reconciling pass adds it)
            with self.conns.tx() as conn:
                rows = conn.exec_driver_sql(self.sql.by_id(1), (action_id,)).all()
            self.queue.put_back(rows)
        return done

    # ------------------------------------------------------------------ creating
    @retry_transient
    @translate_errors
    def insert_action(self, row: NewRow, *, unique: bool = False, now: datetime | None = None) -> int:
        """Insert a pending action as ``ActionScheduler_DBStore::save_action`` does, plus ``action created``.

        ``unique``: as ``save_unique_action`` (AS 3.6-3.9): nothing is written while another ``pending`` or
        ``in-progress`` action has the same hook and group. Returns the new id, or 0 when suppressed."""
        now = now or self.now()
        gid = self.group_ids([row.group], create=True)[row.group]
        self.site  # noqa: B018 - load the site's time zone before the transaction (SQLite has one writer)
        with self.engine.begin() as conn:
            return self.insert_action_in(conn, row, unique=unique, now=now, group_id=gid)

    def insert_action_in(
        self, conn: Connection, row: NewRow, *, unique: bool = False, now: datetime | None = None,
        group_id: int | None = None,
    ) -> int:
        """``insert_action`` inside the caller's transaction, so the caller can write more rows atomically with
        it. No retry here: on a transient error the caller retries its whole transaction. ``group_id``: use this
        group row as it is (else the group is looked up by slug and created if missing). Callers on SQLite load
        ``site`` and the group first: a second connection would wait for this transaction's write lock."""
        now = now or self.now()
        gid = group_id if group_id is not None else self.group_ids([row.group], create=True)[row.group]
        a = self.t.actions
        sched = row.scheduled_date_gmt or now
        is_async = row.scheduled_date_gmt is None
        values: dict[str, Any] = {
            "hook": row.hook,
            "status": Status.PENDING.value,
            "scheduled_date_gmt": sched,
            # Async (NullSchedule) rows carry UTC in the local column too (ActionScheduler_Store quirk, section 6).
            "scheduled_date_local": sched if is_async else self.site.as_local(sched),
            "schedule": row.schedule,
            "group_id": gid,
            "args": row.args,
        }
        if self.t.has_priority:
            values["priority"] = max(0, min(255, int(row.priority)))
        if row.extended_args is not None:
            values["extended_args"] = row.extended_args
        if unique:
            names = list(values)
            exists = (
                select(literal(1))
                .select_from(a)
                .where(
                    a.c.status.in_([Status.PENDING.value, Status.RUNNING.value]),
                    a.c.hook == row.hook,
                    a.c.group_id == gid,
                )
                .exists()
            )
            src = select(*[bindparam(f"v_{n}", values[n], type_=a.c[n].type) for n in names]).where(~exists)
            res = conn.execute(insert(a).from_select(names, src))
            if res.rowcount != 1:
                return 0
            # LAST_INSERT_ID is only trustworthy because the affected-row count said one row went in.
            new_id = int(res.lastrowid or self._last_id(conn))
        else:
            new_id = int(conn.execute(insert(a).values(**values)).inserted_primary_key[0])
        self._insert_logs(conn, [(new_id, "action created")], now)
        return new_id

    def _last_id(self, conn: Connection) -> int:
        if self.info.dialect == "sqlite":
            return int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        return int(conn.exec_driver_sql("SELECT LAST_INSERT_ID()").scalar_one())

    @retry_transient
    @translate_errors
    def cancel(self, action_ids: Sequence[int], now: datetime | None = None) -> list[int]:
        """``pending`` -> ``canceled`` with AS's ``action canceled`` line; never touches other statuses. A row
        someone holds locked right now is tried again shortly (never waited for)."""
        ids = sorted({int(i) for i in action_ids})
        if not ids:
            return []
        now = now or self.now()
        self.site  # noqa: B018

        def then(conn: Connection, applied: Applied) -> list[int]:
            if applied.busy:
                raise LockBusyError("a row to cancel is locked by another session; trying again")
            self._insert_logs(conn, [(i, "action canceled") for i in applied.changed], now)
            return sorted(applied.changed)

        return self._guarded(lambda _c: [Step(self.sql.cancel, (), ids)], then)

    # ------------------------------------------------------------------ PHP's gate, for tests and status
    @translate_errors
    def claim_count(self, exclude_claim_ids: Sequence[int] = ()) -> int:
        """``get_claim_count``: distinct non-zero claims on pending/in-progress rows (PHP's concurrency gate)."""
        a = self.t.actions
        cond = [a.c.claim_id != 0, a.c.status.in_([Status.PENDING.value, Status.RUNNING.value])]
        if exclude_claim_ids:
            cond.append(a.c.claim_id.notin_(list(exclude_claim_ids)))
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count(a.c.claim_id.distinct())).where(*cond)).scalar_one())

    @translate_errors
    def count_by_status(self, hooks: Sequence[str] | None = None) -> dict[str, int]:
        a = self.t.actions
        q = select(a.c.status, func.count()).group_by(a.c.status)
        if hooks is not None:
            q = q.where(a.c.hook.in_(list(hooks)))
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(q)}

    def has_pending_like(self, hook: str, group_ids: Sequence[int] | None = None) -> bool:
        """Is there a pending or running action of this hook (any args)? (``as_next_scheduled_action(hook)``)."""
        a = self.t.actions
        cond = [a.c.hook == hook, or_(a.c.status == Status.PENDING.value, a.c.status == Status.RUNNING.value)]
        if group_ids is not None:
            cond.append(a.c.group_id.in_(list(group_ids)))
        with self.engine.connect() as conn:
            return conn.execute(select(a.c.action_id).where(*cond).limit(1)).first() is not None
