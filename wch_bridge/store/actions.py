"""Action Scheduler verbs on ``{prefix}actionscheduler_*``, writing every row exactly as AS does.

Taking work never uses a claim (so PHP's concurrency gate, ``get_claim_count``, never counts the bridge): due rows
are selected in AS's claim order and started with a guarded UPDATE that only succeeds on ``status='pending' AND
claim_id=0`` (reference sections 9.3 strategy B and 10.1), in one transaction per batch (``take_due``). With the
claim-order index and SKIP LOCKED the claim read itself locks the rows it returns; otherwise candidates are read
plainly and locked by primary key. The worker finishes one batch and takes the next in one transaction
(``finish_and_take``). The hot statements are fixed SQL text (``store.hotpath``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError

from wch_bridge.errors import StoreError
from wch_bridge.models import Action, LogEntry, Status
from wch_bridge.store.engine import DbInfo, mysql_errno, retry_transient, translate_errors
from wch_bridge.store.hotpath import CLAIM_INDEX, QUEUE_INDEX, TransitionSql
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import Clock, SiteTime, fmt, parse_db_date

log = logging.getLogger("wch_bridge.store")

ER_KEY_DOES_NOT_EXIST = 1176  # FORCE INDEX naming an index the table does not have


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
        self.sql = TransitionSql(self.t, self.info.dialect, skip_locked=self.info.skip_locked)
        self._indexes: frozenset[str] | None = None  # see _bridge_indexes

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
        """Due, unclaimed pending actions in AS's claim order (a plain, non-locking read of the claim query that
        ``take_due`` sends)."""
        if (hooks is not None and not hooks) or (group_ids is not None and not group_ids) or limit <= 0:
            return []
        hk = list(hooks) if hooks is not None else []
        gids = [int(g) for g in group_ids] if group_ids is not None else []
        sql = self.sql.due(len(hk) if hooks is not None else None, len(gids) if group_ids is not None else None,
                           False)
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql, (fmt(now), *hk, *gids, int(limit))).all()
            return self._actions_from_rows(conn, rows)

    @translate_errors
    def next_due_at(self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None) -> datetime | None:
        """When the next pending, unclaimed action of these hooks/groups is due (None: nothing pending).

        The worker asks this on every idle poll, so it must stay cheap on a big table: one ``ORDER BY
        scheduled_date_gmt LIMIT 1`` per (hook, group), served by the bridge's ``wch_bridge_report_queue`` (status,
        group_id, hook, scheduled_date_gmt) index, reads one or two index entries. (``MIN()`` over AS's
        ``hook_status_scheduled_date_gmt``, a prefix index on hook, read every pending row of the hook: 40,000 index
        entries and 2.5 s per poll on a 1,000,000-row table with 40,000 future actions.)"""
        if (hooks is not None and not hooks) or (group_ids is not None and not group_ids):
            return None
        hook_list: list[str | None] = list(hooks) if hooks is not None else [None]
        group_list: list[int | None] = [int(g) for g in group_ids] if group_ids is not None else [None]
        hinted = QUEUE_INDEX in self._bridge_indexes()
        found: list[datetime] = []
        with self.engine.connect() as conn:
            for hook in hook_list:
                for gid in group_list:
                    params = tuple(v for v in (gid, hook) if v is not None)
                    build = partial(self.sql.next_due, hook is not None, gid is not None)
                    result, hinted = self._exec_hinted(conn, build, params, hinted, QUEUE_INDEX)
                    when = parse_db_date(result.scalar())
                    if when is not None:
                        found.append(when)
        return min(found) if found else None

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
    def claim_read_locks(self) -> bool:
        """Can the claim read itself lock (``SELECT ... FOR UPDATE SKIP LOCKED`` in claim order)? Only on a server
        with SKIP LOCKED and with the ``wch_bridge_claim_order`` index, which serves the order so the read locks
        just the rows it returns (reference 8.3, 10.4). Otherwise candidates are read plainly and locked by key."""
        return (self.info.dialect == "mysql" and self.info.skip_locked and self.t.has_priority
                and CLAIM_INDEX in self._bridge_indexes())

    def missing_worker_indexes(self) -> list[str]:
        """The recommended indexes the worker's hot statements want and the actions table lacks (MySQL)."""
        if self.info.dialect != "mysql":
            return []
        have = self._bridge_indexes()
        return [name for name in (CLAIM_INDEX, QUEUE_INDEX) if name not in have]

    def _bridge_indexes(self) -> frozenset[str]:
        """The names of the indexes on the actions table (MySQL; looked up once, again after a statement found a
        hinted one missing)."""
        if self._indexes is None:
            if self.info.dialect != "mysql":
                self._indexes = frozenset()
            else:
                try:
                    with self.engine.connect() as conn:
                        rows = conn.exec_driver_sql(self.sql.index_names(), (self.t.actions.name,)).all()
                except Exception:  # noqa: BLE001 - cannot tell now: use no hint, ask again next time
                    return frozenset()
                self._indexes = frozenset(str(r[0]) for r in rows)
        return self._indexes

    def _exec_hinted(self, conn: Connection, build: Callable[[bool], str], params: tuple[Any, ...], hinted: bool,
                     index: str) -> tuple[Any, bool]:
        """Run ``build(hinted)``; when the hinted index was dropped under a running store (errno 1176), forget the
        cached index list, say so, and run the plain form instead (a failed statement does not end the
        transaction in MySQL). Returns the result and whether the hint was used."""
        try:
            return conn.exec_driver_sql(build(hinted), params), hinted
        except DBAPIError as exc:
            if not hinted or mysql_errno(exc) != ER_KEY_DOES_NOT_EXIST:
                raise
        log.warning("index %s is gone from %s: running without it until it is back "
                    "(`wch-bridge schema check --apply-indexes`)", index, self.t.actions.name)
        self._indexes = None
        return conn.exec_driver_sql(build(False), params), False

    def _slugs(self, conn: Connection, group_ids: set[int]) -> dict[int, str]:
        missing = [gid for gid in group_ids if gid not in self._slug_by_id]
        if missing:
            q = f"SELECT group_id, slug FROM {self.t.groups.name} WHERE group_id IN ({self.sql.marks(len(missing))})"  # noqa: S608
            for gid, slug in conn.exec_driver_sql(q, tuple(missing)):
                self._slug_by_id[int(gid)] = str(slug)
        return self._slug_by_id

    def _actions_from_rows(self, conn: Connection, rows: Sequence[Any]) -> list[Action]:
        """Rows of ``hotpath.ACTION_COLUMNS`` -> Actions, as they were before this transaction started them."""
        slugs = self._slugs(conn, {int(r[8]) for r in rows})
        return [
            Action(
                action_id=int(r[0]), hook=r[1], status=r[2], scheduled_date_gmt=parse_db_date(r[3]),
                scheduled_date_local=parse_db_date(r[4]), priority=int(r[5]), args=r[6], schedule=r[7],
                group_id=int(r[8]), group=slugs.get(int(r[8]), ""), attempts=int(r[9]),
                last_attempt_gmt=parse_db_date(r[10]), last_attempt_local=parse_db_date(r[11]), claim_id=int(r[12]),
                extended_args=r[13],
            )
            for r in rows
        ]

    def _lock_pending(self, conn: Connection, ids: Sequence[int]) -> list[int]:
        """Of ``ids``, those still pending with ``claim_id=0``, locked by primary key (MySQL: ``FOR UPDATE SKIP
        LOCKED`` where the server has it, so a row PHP is claiming right now is skipped, not waited for; SQLite:
        the transaction already holds the write lock)."""
        return [int(r[0]) for r in conn.exec_driver_sql(self.sql.lock_ids(len(ids)), tuple(ids))]

    def _start_in(self, conn: Connection, ids: Sequence[int], context: str, now: datetime) -> None:
        """One guarded UPDATE over rows this transaction locked, one multi-row log INSERT."""
        res = conn.exec_driver_sql(self.sql.start(len(ids)), (fmt(now), fmt(self.site.local(now)), *ids))
        if res.rowcount != len(ids):
            # Cannot happen with the rows locked; on any surprise, undo and let the caller see nothing taken.
            raise StoreError(f"take: expected to start {len(ids)} actions, the guarded update matched {res.rowcount}")
        msg = f"action started via {context}"
        self._insert_logs(conn, [(i, msg) for i in ids], now)

    @retry_transient
    @translate_errors
    def take(self, action_ids: Sequence[int], context: str, now: datetime | None = None) -> list[int]:
        """Start the given actions exactly once: ``attempts+1``, ``in-progress``, ``last_attempt_*`` and the log
        line ``action started via <context>`` — only for rows still ``pending`` with ``claim_id=0``.

        One transaction: lock the candidates by primary key, one guarded UPDATE over the locked rows, one
        multi-row log INSERT. Returns the ids this call took; the others were taken by someone else."""
        ids = sorted({int(i) for i in action_ids})
        if not ids:
            return []
        now = now or self.now()
        self.site  # noqa: B018
        with self.engine.begin() as conn:
            got = self._lock_pending(conn, ids)
            if got:
                self._start_in(conn, got, context, now)
        return got

    def _take_due_in(self, conn: Connection, req: TakeRequest, context: str, now: datetime, locking: bool) -> Taken:
        hooks, gids = list(req.hooks), [int(g) for g in req.group_ids]
        if not hooks or not gids or req.limit <= 0:
            return Taken([], 0)
        params = (fmt(now), *hooks, *gids, int(req.limit))
        build = partial(self.sql.due, len(hooks), len(gids))
        result, locking = self._exec_hinted(conn, build, params, locking, CLAIM_INDEX)
        rows = result.all()
        if not rows:
            return Taken([], 0)
        if locking:  # the claim read locked exactly these rows
            got = [int(r[0]) for r in rows]
        else:
            got = self._lock_pending(conn, sorted(int(r[0]) for r in rows))
        if got:
            self._start_in(conn, got, context, now)
        mine = set(got)
        return Taken(self._actions_from_rows(conn, [r for r in rows if int(r[0]) in mine]), len(rows))

    @retry_transient
    @translate_errors
    def take_due(self, req: TakeRequest, context: str, now: datetime | None = None) -> Taken:
        """Take up to ``req.limit`` due actions in AS's claim order, in one transaction: the claim read (locking,
        see ``claim_read_locks``; else a plain read then a lock by key), the guarded start UPDATE and the log
        INSERT. ``Taken.seen`` counts the candidates read (more than taken when someone else got some first)."""
        now = now or self.now()
        locking = self.claim_read_locks()
        self.site  # noqa: B018
        with self.engine.begin() as conn:
            return self._take_due_in(conn, req, context, now, locking)

    # ------------------------------------------------------------------ finishing
    def _finish_in(self, conn: Connection, results: Sequence[tuple[int, bool, str]], context: str,
                   now: datetime) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        ids = sorted({aid for aid, _, _ in results})
        # Lock the rows that are still ours to finish (in-progress); anything else was changed by someone else.
        mine = {int(r[0]) for r in conn.exec_driver_sql(self.sql.running(len(ids)), tuple(ids))}
        if len(mine) != len(ids):
            found = {int(k): v for k, v in conn.exec_driver_sql(self.sql.statuses(len(ids)), tuple(ids))}
            for aid in ids:
                if aid not in mine:
                    out[aid] = str(found.get(aid, "deleted"))
        ok_ids = [aid for aid, ok, _ in results if ok and aid in mine]
        fail_ids = [aid for aid, ok, _ in results if not ok and aid in mine]
        if ok_ids:
            res = conn.exec_driver_sql(self.sql.complete(len(ok_ids)), (fmt(now), fmt(self.site.local(now)), *ok_ids))
            if res.rowcount != len(ok_ids):
                raise StoreError(f"finish: {res.rowcount} of {len(ok_ids)} locked rows updated")
        if fail_ids:
            res = conn.exec_driver_sql(self.sql.fail(len(fail_ids)), tuple(fail_ids))
            if res.rowcount != len(fail_ids):
                raise StoreError(f"finish: {res.rowcount} of {len(fail_ids)} locked rows updated")
        logs: list[tuple[int, str]] = []
        for aid, ok, msg in results:
            if aid not in mine:
                logs.append(
                    (aid, f"WCH Bridge finished this action ({'complete' if ok else 'failed'}) but did not "
                          f"record it: its status had been changed to '{out[aid]}' meanwhile")
                )
                continue
            out[aid] = None
            logs.append((aid, f"action complete via {context}" if ok else f"action failed via {context}: {msg}"))
        self._insert_logs(conn, logs, now)
        return out

    def finish(
        self, results: Sequence[tuple[int, bool, str]], context: str, now: datetime | None = None
    ) -> dict[int, str | None]:
        """Record outcomes: ``(action_id, ok, message)``. Success -> ``complete`` + ``last_attempt_*`` + log
        ``action complete via <context>``; failure -> ``failed`` + log ``action failed via <context>: <message>``.

        Each update is guarded on ``status='in-progress'``: a row the PHP cleaner or an admin changed meanwhile is
        not overwritten. Returns ``{action_id: None}`` when recorded, else ``{action_id: <status found>}``."""
        return self.finish_and_take(results, context, now)[0]

    @retry_transient
    @translate_errors
    def finish_and_take(
        self, results: Sequence[tuple[int, bool, str]], context: str, now: datetime | None = None,
        take: TakeRequest | None = None,
    ) -> tuple[dict[int, str | None], Taken]:
        """``finish`` and, with ``take``, ``take_due`` in the same transaction: one COMMIT (one redo-log flush)
        for a batch's outcomes and the next batch's start. On any error neither is written."""
        if not results and take is None:
            return {}, Taken([], 0)
        now = now or self.now()
        locking = self.claim_read_locks() if take is not None else False
        self.site  # noqa: B018
        with self.engine.begin() as conn:
            out = self._finish_in(conn, results, context, now) if results else {}
            taken = self._take_due_in(conn, take, context, now, locking) if take is not None else Taken([], 0)
        return out, taken

    @retry_transient
    @translate_errors
    def touch(self, action_ids: Sequence[int], now: datetime | None = None) -> int:
        """Refresh ``last_attempt_*`` of running actions so PHP's cleaner (300 s failure period) leaves them be."""
        if not action_ids:
            return 0
        now = now or self.now()
        a = self.t.actions
        with self.engine.begin() as conn:
            res = conn.execute(
                update(a)
                .where(a.c.action_id.in_(list(action_ids)), a.c.status == Status.RUNNING.value)
                .values(last_attempt_gmt=now, last_attempt_local=self.site.local(now))
            )
        return int(res.rowcount)

    def release(self, action_id: int, reason: str, now: datetime | None = None) -> bool:
        """``in-progress`` -> ``pending`` (a stopped or dead worker's action, to be run again), with a log line.

        ``attempts`` keeps the count of starts; the re-run lands after fresh work in AS's claim order."""
        return self._leave_running(action_id, Status.PENDING, reason, now)

    def fail_running(self, action_id: int, message: str, now: datetime | None = None) -> bool:
        """``in-progress`` -> ``failed`` with a log line (orphan recovery of hooks that are not safe to re-run)."""
        return self._leave_running(action_id, Status.FAILED, message, now)

    @retry_transient
    @translate_errors
    def _leave_running(self, action_id: int, to: Status, message: str, now: datetime | None) -> bool:
        now = now or self.now()
        a = self.t.actions
        values: dict[str, Any] = {"status": to.value}
        if to is Status.PENDING:
            values["claim_id"] = 0
        with self.engine.begin() as conn:
            res = conn.execute(
                update(a).where(a.c.action_id == action_id, a.c.status == Status.RUNNING.value).values(**values)
            )
            if res.rowcount != 1:
                return False
            self._insert_logs(conn, [(action_id, message)], now)
        return True

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
        """``pending`` -> ``canceled`` with AS's ``action canceled`` line; never touches other statuses."""
        ids = sorted({int(i) for i in action_ids})
        if not ids:
            return []
        now = now or self.now()
        a = self.t.actions
        with self.engine.begin() as conn:
            sel = (select(a.c.action_id).where(a.c.action_id.in_(ids), a.c.status == Status.PENDING.value)
                   .order_by(a.c.action_id))
            if self.info.dialect == "mysql":
                sel = sel.with_for_update()
            got = [int(r[0]) for r in conn.execute(sel)]
            if got:
                conn.execute(
                    update(a)
                    .where(a.c.action_id.in_(got), a.c.status == Status.PENDING.value)
                    .values(status=Status.CANCELED.value)
                )
                self._insert_logs(conn, [(i, "action canceled") for i in got], now)
        return got

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

    @translate_errors
    def running_ids(self, action_ids: Sequence[int]) -> list[int]:
        a = self.t.actions
        if not action_ids:
            return []
        with self.engine.connect() as conn:
            q = select(a.c.action_id).where(a.c.action_id.in_(list(action_ids)), a.c.status == Status.RUNNING.value)
            return [int(r[0]) for r in conn.execute(q)]

    def has_pending_like(self, hook: str, group_ids: Sequence[int] | None = None) -> bool:
        """Is there a pending or running action of this hook (any args)? (``as_next_scheduled_action(hook)``)."""
        a = self.t.actions
        cond = [a.c.hook == hook, or_(a.c.status == Status.PENDING.value, a.c.status == Status.RUNNING.value)]
        if group_ids is not None:
            cond.append(a.c.group_id.in_(list(group_ids)))
        with self.engine.connect() as conn:
            return conn.execute(select(a.c.action_id).where(*cond).limit(1)).first() is not None
