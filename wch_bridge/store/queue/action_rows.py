"""Action Scheduler's rows as AS writes and reads them: the store's connection facts, groups, log lines, reads of
actions and logs, and new actions (``ActionScheduler_DBStore::save_action``). ``ActionRows`` is the base of
``store.queue.actions.ActionStore``, which adds the queue verbs (take, finish, touch, release, cancel)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, or_, select
from sqlalchemy.engine import Connection, Engine, Row

from wch_bridge.errors import StoreError
from wch_bridge.models import Action, LogEntry, Status
from wch_bridge.store import schema
from wch_bridge.store.engine import DbInfo, retry_transient, translate_errors
from wch_bridge.store.held_connection import HeldConnection
from wch_bridge.store.queue.claim_queue import ClaimQueue
from wch_bridge.store.queue.transition_sql import TransitionSql
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import Clock, SiteTime, fmt, parse_db_date

log = logging.getLogger("wch_bridge.store")


@dataclass(frozen=True)
class Stamp:
    """An instant as Action Scheduler writes it: ``gmt``; ``local``, the site's wall clock (``last_attempt_local``);
    ``log_local``, AS's rendering for ``log_date_local`` (UTC again on a site with only a UTC offset)."""

    gmt: str
    local: str
    log_local: str

    @property
    def attempt(self) -> tuple[str, str]:
        """``(last_attempt_gmt, last_attempt_local)``."""
        return self.gmt, self.local


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


class ActionRows:
    """Reads and writes the four Action Scheduler tables (plus the ``wp_options`` values AS reads): everything but
    the queue verbs (``ActionStore``)."""

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

    def stamp(self, now: datetime) -> Stamp:
        """``now`` as Action Scheduler writes it (``Stamp``). Taken before each transaction: the first call reads the
        site's time zone from ``wp_options``, which must not happen inside a write (SQLite has one writer)."""
        return Stamp(fmt(now), fmt(self.site.local(now)), fmt(self.site.as_local(now)))

    def _insert_logs(self, conn: Connection, items: Iterable[tuple[int, str]], at: Stamp) -> None:
        """AS log rows (``ActionScheduler_DBLogger::log``), one multi-row INSERT."""
        rows = [(aid, msg, at.gmt, at.log_local) for aid, msg in items]
        if rows:
            conn.exec_driver_sql(self.sql.log_insert, rows)

    @retry_transient
    @translate_errors
    def log(self, action_id: int, message: str, now: datetime | None = None) -> None:
        """One AS log row (``ActionScheduler_DBLogger::log``)."""
        at = self.stamp(now or self.now())
        with self.engine.begin() as conn:
            self._insert_logs(conn, [(action_id, message)], at)

    @retry_transient
    @translate_errors
    def log_many(self, items: Sequence[tuple[int, str]], now: datetime | None = None) -> None:
        at = self.stamp(now or self.now())
        with self.engine.begin() as conn:
            self._insert_logs(conn, items, at)

    def _action_cols(self) -> list[Any]:
        a, g = self.t.actions, self.t.groups
        return [a, func.coalesce(g.c.slug, "").label("group_slug")]

    def _row_to_action(self, row: Row[Any]) -> Action:
        m = row._mapping
        return self._action_from(m, m["group_slug"] or "")

    def _action_from(self, m: Mapping[str, Any], group: str) -> Action:
        """An Action from a row mapped by column name (``transition_sql.ACTION_COLUMNS``)."""
        return Action(
            action_id=int(m["action_id"]),
            hook=m["hook"],
            status=m["status"],
            scheduled_date_gmt=parse_db_date(m["scheduled_date_gmt"]),
            scheduled_date_local=parse_db_date(m["scheduled_date_local"]),
            priority=int(m["priority"]) if self.t.has_priority else 10,
            args=m["args"],
            schedule=m["schedule"],
            group_id=int(m["group_id"]),
            group=group,
            attempts=int(m["attempts"]),
            last_attempt_gmt=parse_db_date(m["last_attempt_gmt"]),
            last_attempt_local=parse_db_date(m["last_attempt_local"]),
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

    @retry_transient
    @translate_errors
    def insert_action(self, row: NewRow, *, unique: bool = False, now: datetime | None = None) -> int:
        """Insert a pending action as ``ActionScheduler_DBStore::save_action`` does, plus ``action created``.

        ``unique``: as ``save_unique_action`` (AS 3.6-3.9): nothing is written while another ``pending`` or
        ``in-progress`` action has the same hook and group. Returns the new id, or 0 when suppressed."""
        now = now or self.now()
        gid = self.group_ids([row.group], create=True)[row.group]
        self.stamp(now)  # the site's time zone, read before the transaction (SQLite has one writer)
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
        self._insert_logs(conn, [(new_id, "action created")], self.stamp(now))
        return new_id

    def _last_id(self, conn: Connection) -> int:
        if self.info.dialect == "sqlite":
            return int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        return int(conn.exec_driver_sql("SELECT LAST_INSERT_ID()").scalar_one())
