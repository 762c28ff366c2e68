"""MEASUREMENT PROTOTYPE of the changes proposed for ``wch_bridge/worker.py`` and ``wch_bridge/store/actions.py``
(issue 7). Not used by the bridge; ``wch-bridge bench --worker-factory benchmarks/proto_batched.py:build`` runs
it under the same harness and measurements as the real worker, so the proposal comes with numbers.

What it changes, and nothing else (every row and log line stays exactly as the real worker writes it):

P1  batching policy: the main loop does not write after every wake-up. It lets results accumulate until at
    least half the pool is free (``low_water``), lingering at most ``LINGER_S``, then writes them and takes the
    next batch. (Real worker: records whatever single result woke it and re-takes ``concurrency - inflight``
    actions, so batches fragment to ~17 on a 32-thread pool.)
P2  fetch + take in one statement: ``SELECT <action columns> ... ORDER BY <claim order> LIMIT n FOR UPDATE
    SKIP LOCKED`` (served by the ``wch_bridge_claim_order`` index, so it locks only the rows it returns), then
    the guarded UPDATE and the multi-row log INSERT, in the same transaction. Group slugs come from the
    worker's group cache (no JOIN: a locking read over a JOIN would lock the group row too). Saves a SELECT,
    a connection checkout (+pre-ping) and a rollback per batch; K workers no longer race for the same rows.
P3  finish + take in one transaction: the outcomes of the previous batch and the start of the next one share
    one COMMIT (one redo-log fsync instead of two).
P4  ``next_due_at`` as a UNION ALL of one ``ORDER BY scheduled_date_gmt LIMIT 1`` per hook (served by AS's
    ``hook_status_scheduled_date_gmt``) instead of ``MIN()`` over an index-merge of all pending rows.
P5  (engine) no ``pool_pre_ping`` round trip on every checkout (``PREPING=0``; the worker already retries
    transient errors, and ``pool_recycle`` handles idle disconnects).
P6  (``FAST=1``, MySQL/MariaDB) the hot path as fixed SQL text through ``exec_driver_sql`` instead of building
    SQLAlchemy expressions per call: the same statements, but no expression construction, cache-key
    generation and IN-list expansion per batch (SQLAlchemy Core is ~43 % of the worker's CPU in a no-op drain);
    the claim-order SELECT pinned with ``FORCE INDEX (wch_bridge_claim_order)`` (right after a bulk load, with
    stale statistics, MariaDB otherwise picks ``status_scheduled_date_gmt`` + filesort and reads every pending
    row per poll); integer ids inlined (as AS does), dates bound as ``Y-m-d H:i:s`` text.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, union_all, update

from wch_bridge import app
from wch_bridge.errors import StoreError, TransientStoreError
from wch_bridge.handlers.base import Handler
from wch_bridge.models import CONTEXT, Action, Status
from wch_bridge.settings import Settings
from wch_bridge.store.actions import ActionStore
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.timeutil import Clock
from wch_bridge.worker import Worker

LINGER_S = 0.002


class _RowView:
    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping


class ProtoStore(ActionStore):
    next_take: tuple[list[str], list[int], int] | None = None
    taken: list[Action] | None = None  # set by finish() when it also took the batch asked in next_take

    # P2 -------------------------------------------------------------------------------------------------------
    def _take_in(self, conn: Any, hooks: Sequence[str], group_ids: Sequence[int], now: datetime, limit: int,
                 context: str) -> list[Action]:
        a = self.t.actions
        sel = select(a).where(self._due_filter(hooks, group_ids, now)).order_by(*self._claim_order()).limit(limit)
        if self.info.dialect == "mysql":
            sel = sel.with_for_update(skip_locked=self.info.skip_locked)
        rows = conn.execute(sel).all()
        if not rows:
            return []
        ids = [int(r.action_id) for r in rows]
        res = conn.execute(update(a).where(self._pending_unclaimed(ids)).values(**self._start_values(now)))
        if res.rowcount != len(ids):
            raise StoreError(f"take: {res.rowcount} of {len(ids)} locked rows started")
        self._insert_logs(conn, [(i, f"action started via {context}") for i in ids], now)
        slugs = {gid: slug for slug, gid in self._group_cache.items()}
        return [self._row_to_action(_RowView({**r._mapping, "group_slug": slugs.get(int(r.group_id), "")}))
                for r in rows]

    @retry_transient
    @translate_errors
    def take_due(self, hooks: Sequence[str], group_ids: Sequence[int], now: datetime, limit: int,
                 context: str = CONTEXT) -> list[Action]:
        self.site  # noqa: B018 - resolve the time zone outside the transaction
        with self.engine.begin() as conn:
            return self._take_in(conn, hooks, group_ids, now, limit, context)

    # P3 -------------------------------------------------------------------------------------------------------
    def _finish_in(self, conn: Any, results: Sequence[tuple[int, bool, str]], context: str,
                   now: datetime) -> dict[int, str | None]:
        a = self.t.actions
        local = self.site.local(now)
        out: dict[int, str | None] = {}
        logs: list[tuple[int, str]] = []
        ids = [aid for aid, _, _ in results]
        running = a.c.status == Status.RUNNING.value
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
            res = conn.execute(update(a).where(a.c.action_id.in_(ok_ids), running)
                               .values(status=Status.COMPLETE.value, last_attempt_gmt=now, last_attempt_local=local))
            if res.rowcount != len(ok_ids):
                raise StoreError(f"finish: {res.rowcount} of {len(ok_ids)} locked rows updated")
        if fail_ids:
            res = conn.execute(update(a).where(a.c.action_id.in_(fail_ids), running).values(status=Status.FAILED.value))
            if res.rowcount != len(fail_ids):
                raise StoreError(f"finish: {res.rowcount} of {len(fail_ids)} locked rows updated")
        for aid, ok, msg in results:
            if aid not in mine:
                logs.append((aid, f"WCH Bridge finished this action ({'complete' if ok else 'failed'}) but did not "
                                  f"record it: its status had been changed to '{out[aid]}' meanwhile"))
                continue
            out[aid] = None
            logs.append((aid, f"action complete via {context}" if ok else f"action failed via {context}: {msg}"))
        self._insert_logs(conn, logs, now)
        return out

    @retry_transient
    @translate_errors
    def finish(self, results: Sequence[tuple[int, bool, str]], context: str,
               now: datetime | None = None) -> dict[int, str | None]:
        if not results and self.next_take is None:
            return {}
        now = now or self.now()
        self.site  # noqa: B018
        request = self.next_take
        with self.engine.begin() as conn:
            out = self._finish_in(conn, results, context, now) if results else {}
            taken = self._take_in(conn, request[0], request[1], now, request[2], context) if request else None
        if request is not None:
            self.taken = taken
        return out

    # P4 -------------------------------------------------------------------------------------------------------
    @translate_errors
    def next_due_at(self, hooks: Sequence[str] | None, group_ids: Sequence[int] | None) -> datetime | None:
        if not hooks or (group_ids is not None and not group_ids):
            return super().next_due_at(hooks, group_ids)
        a = self.t.actions
        parts = []
        for hook in hooks:
            cond = [a.c.hook == hook, a.c.status == Status.PENDING.value, a.c.claim_id == 0]
            if group_ids is not None:
                cond.append(a.c.group_id.in_(list(group_ids)))
            parts.append(select(a.c.scheduled_date_gmt.label("d")).where(and_(*cond))
                         .order_by(a.c.scheduled_date_gmt).limit(1))
        u = union_all(*parts).subquery()
        with self.engine.connect() as conn:
            values = [r[0] for r in conn.execute(select(u.c.d))]
        values = [v for v in values if v is not None]
        return min(values) if values else None


_COLS = ("action_id", "hook", "status", "scheduled_date_gmt", "scheduled_date_local", "priority", "args", "schedule",
         "group_id", "attempts", "last_attempt_gmt", "last_attempt_local", "claim_id", "extended_args")


class FastStore(ProtoStore):
    """P6: the same transitions as fixed SQL text (MySQL/MariaDB with the claim-order index and SKIP LOCKED)."""

    def _ids(self, ids: Sequence[int]) -> str:
        return ",".join(str(int(i)) for i in ids)

    def _take_in(self, conn: Any, hooks: Sequence[str], group_ids: Sequence[int], now: datetime, limit: int,
                 context: str) -> list[Action]:
        from wch_bridge.timeutil import fmt, parse_db_date

        a, lg = self.t.actions.name, self.t.logs.name
        hook_ph = ",".join(["%s"] * len(hooks))
        sql = (f"SELECT {', '.join(_COLS)} FROM {a} FORCE INDEX (wch_bridge_claim_order) "  # noqa: S608
               f"WHERE claim_id = 0 AND status = 'pending' AND scheduled_date_gmt <= %s AND hook IN ({hook_ph}) "
               f"AND group_id IN ({self._ids(group_ids)}) "
               f"ORDER BY priority, attempts, scheduled_date_gmt, action_id LIMIT {int(limit)} "
               f"FOR UPDATE{' SKIP LOCKED' if self.info.skip_locked else ''}")
        rows = conn.exec_driver_sql(sql, (fmt(now), *hooks)).all()
        if not rows:
            return []
        ids = [int(r[0]) for r in rows]
        res = conn.exec_driver_sql(
            f"UPDATE {a} SET attempts = attempts + 1, status = 'in-progress', last_attempt_gmt = %s, "  # noqa: S608
            f"last_attempt_local = %s WHERE action_id IN ({self._ids(ids)}) AND status = 'pending' AND claim_id = 0",
            (fmt(now), fmt(self.site.local(now))),
        )
        if res.rowcount != len(ids):
            raise StoreError(f"take: {res.rowcount} of {len(ids)} locked rows started")
        msg = f"action started via {context}"
        g, loc = fmt(now), fmt(self.site.as_local(now))
        conn.exec_driver_sql(f"INSERT INTO {lg} (action_id, message, log_date_gmt, log_date_local) "  # noqa: S608
                             f"VALUES (%s, %s, %s, %s)", [(i, msg, g, loc) for i in ids])
        slugs = {gid: slug for slug, gid in self._group_cache.items()}
        out = []
        for r in rows:
            out.append(Action(
                action_id=int(r[0]), hook=r[1], status=r[2], scheduled_date_gmt=parse_db_date(r[3]),
                scheduled_date_local=parse_db_date(r[4]), priority=int(r[5]), args=r[6], schedule=r[7],
                group_id=int(r[8]), group=slugs.get(int(r[8]), ""), attempts=int(r[9]),
                last_attempt_gmt=parse_db_date(r[10]), last_attempt_local=parse_db_date(r[11]), claim_id=int(r[12]),
                extended_args=r[13],
            ))
        return out

    def _finish_in(self, conn: Any, results: Sequence[tuple[int, bool, str]], context: str,
                   now: datetime) -> dict[int, str | None]:
        from wch_bridge.timeutil import fmt

        a, lg = self.t.actions.name, self.t.logs.name
        ids = [aid for aid, _, _ in results]
        mine = {int(r[0]) for r in conn.exec_driver_sql(
            f"SELECT action_id FROM {a} WHERE action_id IN ({self._ids(ids)}) "  # noqa: S608
            f"AND status = 'in-progress' FOR UPDATE")}
        out: dict[int, str | None] = {}
        if len(mine) != len(set(ids)):
            found = dict(conn.exec_driver_sql(
                f"SELECT action_id, status FROM {a} WHERE action_id IN ({self._ids(ids)})").all())  # noqa: S608
            for aid in ids:
                if aid not in mine:
                    out[aid] = str(found.get(aid, "deleted"))
        ok_ids = [aid for aid, ok, _ in results if ok and aid in mine]
        fail_ids = [aid for aid, ok, _ in results if not ok and aid in mine]
        g, loc_wp, loc_as = fmt(now), fmt(self.site.local(now)), fmt(self.site.as_local(now))
        if ok_ids:
            res = conn.exec_driver_sql(
                f"UPDATE {a} SET status = 'complete', last_attempt_gmt = %s, last_attempt_local = %s "  # noqa: S608
                f"WHERE action_id IN ({self._ids(ok_ids)}) AND status = 'in-progress'", (g, loc_wp))
            if res.rowcount != len(ok_ids):
                raise StoreError(f"finish: {res.rowcount} of {len(ok_ids)} locked rows updated")
        if fail_ids:
            res = conn.exec_driver_sql(
                f"UPDATE {a} SET status = 'failed' WHERE action_id IN ({self._ids(fail_ids)}) "  # noqa: S608
                f"AND status = 'in-progress'")
            if res.rowcount != len(fail_ids):
                raise StoreError(f"finish: {res.rowcount} of {len(fail_ids)} locked rows updated")
        logs = []
        for aid, ok, msg in results:
            if aid not in mine:
                logs.append((aid, f"WCH Bridge finished this action ({'complete' if ok else 'failed'}) but did not "
                                  f"record it: its status had been changed to '{out[aid]}' meanwhile", g, loc_as))
                continue
            out[aid] = None
            logs.append((aid, f"action complete via {context}" if ok else f"action failed via {context}: {msg}",
                         g, loc_as))
        if logs:
            conn.exec_driver_sql(f"INSERT INTO {lg} (action_id, message, log_date_gmt, log_date_local) "  # noqa: S608
                                 f"VALUES (%s, %s, %s, %s)", logs)
        return out


class ProtoWorker(Worker):
    store: ProtoStore

    def _take_batch(self, hooks: list[str], group_ids: list[int], limit: int) -> tuple[list[Action], int]:
        now = self.clock.now()
        got: list[Action] | None = None
        if self._unwritten:  # P3: record the finished ones and take the next batch in one transaction
            self.store.next_take, self.store.taken = (hooks, group_ids, limit), None
            try:
                self._flush_unwritten()
            finally:
                self.store.next_take = None
            got, self.store.taken = self.store.taken, None
        if got is None:  # nothing was finishing (or writing failed): take on its own
            got = self.store.take_due(hooks, group_ids, now, limit)
        self.stats.taken += len(got)
        return got, len(got)

    def _collect(self, block_for: float) -> int:
        """Move finished results to ``_unwritten`` without writing them. P1: after the first one, linger a little
        (the rest of a batch of fast actions is finishing right now)."""
        n = 0
        try:
            if block_for > 0:
                self._unwritten.append(self._results.get(timeout=block_for))
                n += 1
                deadline = time.monotonic() + LINGER_S
                while self._free() < self._low_water() and time.monotonic() < deadline:
                    try:
                        self._unwritten.append(self._results.get(timeout=max(0.0, deadline - time.monotonic())))
                        n += 1
                    except queue.Empty:
                        break
            while True:
                self._unwritten.append(self._results.get_nowait())
                n += 1
        except queue.Empty:
            pass
        return n

    def _free(self) -> int:
        return self.settings.concurrency - (len(self._inflight) - len(self._unwritten))

    def _low_water(self) -> int:
        return max(1, min(self.settings.batch_size, self.settings.concurrency) // 2)

    def run(self) -> int:  # the real loop with P1 (batching policy) and P3 (finish+take) folded in
        s = self.settings
        self._heartbeats_on = self._guarded_bool(self.heartbeats.available)
        group_ids = self._resolve_groups()
        hooks = self.hooks
        taken_total = 0
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=s.concurrency, thread_name_prefix="wch-action") as pool:
            while True:
                self._collect(0)
                self._maintenance(hooks, group_ids)
                if self.on_tick:
                    self._guard(lambda: self.on_tick(self))  # type: ignore[misc]
                self._touch_long_running()
                if self._hard_stop:
                    break
                if self._stopping:
                    self._flush_unwritten()
                    if not self._inflight or (self._grace_deadline and time.monotonic() > self._grace_deadline):
                        break
                    self._collect(0.2)
                    continue
                free = self._free()
                if s.max_actions is not None:
                    free = min(free, s.max_actions - taken_total)
                busy = len(self._inflight) - len(self._unwritten)
                if busy > 0 and free < self._low_water():
                    self._collect(s.poll_interval)  # P1: wait until half the pool is free
                    continue
                fetched = 0
                limit = min(free, s.batch_size)
                if limit > 0:
                    try:
                        got, fetched = self._take_batch(hooks, group_ids, limit)
                        self._outage_over()
                    except TransientStoreError as exc:
                        self._outage(exc)
                        self._collect(min(5.0, s.poll_interval))
                        continue
                    for action in got:
                        taken_total += 1
                        self._inflight[action.action_id] = (action, time.monotonic())
                        pool.submit(self._run_one, action)
                    if got and fetched == limit:
                        continue
                self._flush_unwritten()
                if s.max_actions is not None and taken_total >= s.max_actions and not self._inflight:
                    break
                if s.once and not self._inflight and fetched == 0:
                    break
                wait = self._idle_wait(hooks, group_ids) if fetched < limit else 0.0
                if self._inflight:
                    wait = min(wait, s.poll_interval)
                self._collect(wait)
            self._collect(0)
            self._flush_unwritten()
            self.abandoned_threads = bool(self._inflight)
            self._release_inflight()
            self._flush_unwritten(final=True)
            pool.shutdown(wait=not self.abandoned_threads, cancel_futures=True)
        if self._heartbeats_on:
            self._guard(lambda: self._beat(stopped=True))
        return 1 if self._hard_stop else 0


def build(settings: Settings, registry: dict[str, Handler]) -> tuple[ActionStore, Worker]:
    """Factory for ``wch-bridge bench --worker-factory``: the prototype store and worker."""
    engine = app.open_engine(settings)
    if os.environ.get("PREPING", "1") == "0":  # P5
        engine.pool._pre_ping = False  # type: ignore[attr-defined]
    cls = FastStore if os.environ.get("FAST") == "1" and engine.dialect.name == "mysql" else ProtoStore
    store = cls(engine, settings.prefix, clock=Clock(speed=settings.clock_speed))
    app.ensure_bridge_tables(store)
    services = app.build_services(settings, store)
    worker = ProtoWorker(store, registry, settings, services, secrets=app.secrets_of(settings))
    return store, worker


__all__ = ["FastStore", "ProtoStore", "ProtoWorker", "build"]
