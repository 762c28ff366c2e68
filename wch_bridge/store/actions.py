"""Action Scheduler verbs on ``{prefix}actionscheduler_*``, writing every row exactly as AS does.

Taking work never uses a claim (so PHP's concurrency gate, ``get_claim_count``, never counts the bridge): due rows
are selected in AS's claim order, then taken by primary key with a guarded UPDATE that only succeeds on
``status='pending' AND claim_id=0`` (reference sections 9.3 strategy B and 10.1)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine, Row

from wch_bridge.errors import StoreError
from wch_bridge.models import Action, LogEntry, Status
from wch_bridge.store.engine import DbInfo, retry_transient, translate_errors
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import Clock, SiteTime

log = logging.getLogger("wch_bridge.store")


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

    def _claim_order(self) -> list[Any]:
        a = self.t.actions
        order = [a.c.priority.asc()] if self.t.has_priority else []
        return order + [a.c.attempts.asc(), a.c.scheduled_date_gmt.asc(), a.c.action_id.asc()]

    def _due_filter(self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None, now: datetime) -> Any:
        a = self.t.actions
        cond = [a.c.status == Status.PENDING.value, a.c.claim_id == 0, a.c.scheduled_date_gmt <= now]
        if hooks is not None:
            cond.append(a.c.hook.in_(list(hooks)))
        if group_ids is not None:
            cond.append(a.c.group_id.in_(list(group_ids)))
        return and_(*cond)

    @translate_errors
    def fetch_due(
        self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None, now: datetime, limit: int
    ) -> list[Action]:
        """Due, unclaimed pending actions in AS's claim order (a plain, non-locking read)."""
        if (hooks is not None and not hooks) or (group_ids is not None and not group_ids) or limit <= 0:
            return []
        a, g = self.t.actions, self.t.groups
        q = (
            select(*self._action_cols())
            .select_from(a.outerjoin(g, a.c.group_id == g.c.group_id))
            .where(self._due_filter(hooks, group_ids, now))
            .order_by(*self._claim_order())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [self._row_to_action(r) for r in conn.execute(q)]

    @translate_errors
    def next_due_at(self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None) -> datetime | None:
        """When the next pending, unclaimed action of these hooks/groups is due (None: nothing pending).

        One small query per hook, each served by AS's ``hook_status_scheduled_date_gmt`` index: a single query
        over all hooks makes MariaDB intersect ``status_claim_id`` with ``group_id``, reading every row of the
        group on each idle poll (about 100 ms at 200,000 rows; benchmarks/ANALYSIS.md)."""
        if (hooks is not None and not hooks) or (group_ids is not None and not group_ids):
            return None
        a = self.t.actions
        base = [a.c.status == Status.PENDING.value, a.c.claim_id == 0]
        if group_ids is not None:
            base.append(a.c.group_id.in_(list(group_ids)))
        found: list[datetime] = []
        with self.engine.connect() as conn:
            for hook in (list(hooks) if hooks is not None else [None]):
                cond = base + ([a.c.hook == hook] if hook is not None else [])
                when = conn.execute(select(func.min(a.c.scheduled_date_gmt)).where(and_(*cond))).scalar()
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
    def _log_rows(self, items: Iterable[tuple[int, str]], now: datetime) -> list[dict[str, Any]]:
        local = self.site.as_local(now)
        return [
            {"action_id": aid, "message": msg, "log_date_gmt": now, "log_date_local": local} for aid, msg in items
        ]

    def _insert_logs(self, conn: Connection, items: Iterable[tuple[int, str]], now: datetime) -> None:
        rows = self._log_rows(items, now)
        if rows:
            conn.execute(insert(self.t.logs), rows)

    @retry_transient
    @translate_errors
    def log(self, action_id: int, message: str, now: datetime | None = None) -> None:
        """One AS log row (``ActionScheduler_DBLogger::log``)."""
        with self.engine.begin() as conn:
            self._insert_logs(conn, [(action_id, message)], now or self.now())

    @retry_transient
    @translate_errors
    def log_many(self, items: Sequence[tuple[int, str]], now: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            self._insert_logs(conn, items, now or self.now())

    # ------------------------------------------------------------------ taking work
    def _start_values(self, now: datetime) -> dict[str, Any]:
        return {
            "attempts": self.t.actions.c.attempts + 1,
            "status": Status.RUNNING.value,
            "last_attempt_gmt": now,
            "last_attempt_local": self.site.local(now),
        }

    def _pending_unclaimed(self, ids: Sequence[int]) -> Any:
        a = self.t.actions
        return and_(a.c.action_id.in_(list(ids)), a.c.status == Status.PENDING.value, a.c.claim_id == 0)

    @retry_transient
    @translate_errors
    def take(self, action_ids: Sequence[int], context: str, now: datetime | None = None) -> list[int]:
        """Start the given actions exactly once: ``attempts+1``, ``in-progress``, ``last_attempt_*`` and the log
        line ``action started via <context>`` — only for rows still ``pending`` with ``claim_id=0``.

        One transaction: lock the candidates by primary key (``FOR UPDATE SKIP LOCKED`` where the server has it,
        so a row PHP is claiming right now is skipped, not waited for), one guarded UPDATE over the locked rows,
        one multi-row log INSERT. Returns the ids this call took; the others were taken by someone else."""
        ids = sorted({int(i) for i in action_ids})
        if not ids:
            return []
        now = now or self.now()
        a = self.t.actions
        with self.engine.begin() as conn:
            sel = select(a.c.action_id).where(self._pending_unclaimed(ids))
            if self.info.dialect == "mysql":
                sel = sel.with_for_update(skip_locked=self.info.skip_locked)
            got = [int(r[0]) for r in conn.execute(sel)]
            if not got:
                return []
            res = conn.execute(update(a).where(self._pending_unclaimed(got)).values(**self._start_values(now)))
            if res.rowcount != len(got):
                # Cannot happen with the rows locked; on any surprise, undo and let the caller see nothing taken.
                raise StoreError(f"take: expected to start {len(got)} actions, the guarded update matched {res.rowcount}")
            self._insert_logs(conn, [(i, f"action started via {context}") for i in got], now)
        return got

    # ------------------------------------------------------------------ finishing
    @retry_transient
    @translate_errors
    def finish(
        self, results: Sequence[tuple[int, bool, str]], context: str, now: datetime | None = None
    ) -> dict[int, str | None]:
        """Record outcomes: ``(action_id, ok, message)``. Success -> ``complete`` + ``last_attempt_*`` + log
        ``action complete via <context>``; failure -> ``failed`` + log ``action failed via <context>: <message>``.

        Each update is guarded on ``status='in-progress'``: a row the PHP cleaner or an admin changed meanwhile is
        not overwritten. Returns ``{action_id: None}`` when recorded, else ``{action_id: <status found>}``."""
        if not results:
            return {}
        now = now or self.now()
        a = self.t.actions
        local = self.site.local(now)
        out: dict[int, str | None] = {}
        logs: list[tuple[int, str]] = []
        ids = [aid for aid, _, _ in results]
        running = a.c.status == Status.RUNNING.value
        with self.engine.begin() as conn:
            # Lock the rows that are still ours to finish (in-progress); anything else was changed by someone else.
            sel = select(a.c.action_id).where(a.c.action_id.in_(ids), running)
            if self.info.dialect == "mysql":
                sel = sel.with_for_update()
            mine = {int(r[0]) for r in conn.execute(sel)}
            if len(mine) != len(set(ids)):
                found = dict(conn.execute(select(a.c.action_id, a.c.status).where(a.c.action_id.in_(ids))).all())
                for aid in ids:
                    if aid not in mine:
                        out[aid] = str(found.get(aid, "deleted"))
            ok_ids = [aid for aid, ok, _ in results if ok and aid in mine]
            fail_ids = [aid for aid, ok, _ in results if not ok and aid in mine]
            if ok_ids:
                res = conn.execute(
                    update(a)
                    .where(a.c.action_id.in_(ok_ids), running)
                    .values(status=Status.COMPLETE.value, last_attempt_gmt=now, last_attempt_local=local)
                )
                if res.rowcount != len(ok_ids):
                    raise StoreError(f"finish: {res.rowcount} of {len(ok_ids)} locked rows updated")
            if fail_ids:
                res = conn.execute(update(a).where(a.c.action_id.in_(fail_ids), running).values(status=Status.FAILED.value))
                if res.rowcount != len(fail_ids):
                    raise StoreError(f"finish: {res.rowcount} of {len(fail_ids)} locked rows updated")
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
