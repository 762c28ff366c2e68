"""Worker heartbeats (``{prefix}wch_bridge_workers``) and orphan recovery queries.

A worker beats every few seconds with the ids of the actions it holds. An ``in-progress`` action of the served
hooks whose ``last_attempt_gmt`` is older than the orphan limit and that no live worker holds belongs to a dead
worker: the caller decides whether it goes back to ``pending`` or is failed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, inspect, or_, select, update
from sqlalchemy.engine import Engine

from wch_bridge.health import WorkerBeat
from wch_bridge.models import Status
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.tables import Tables


@dataclass(frozen=True)
class WorkerRow(WorkerBeat):
    """A heartbeat row (``health.WorkerBeat``) with what the worker serves (published with each heartbeat)."""

    groups: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()


def _names(raw: str | None) -> tuple[str, ...]:
    """A JSON list of names from the heartbeat row (empty when missing or unreadable)."""
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


class WorkerRegistry:
    def __init__(self, engine: Engine, tables: Tables) -> None:
        self.engine = engine
        self.t = tables

    @property
    def table_name(self) -> str:
        return self.t.workers.name

    def available(self) -> bool:
        return self.table_name in inspect(self.engine).get_table_names()

    @retry_transient
    @translate_errors
    def beat(self, worker_id: str, *, host: str, pid: int, version: str, started_at: datetime, now: datetime,
             in_hand_ids: Sequence[int], stopped: bool = False, groups: Sequence[str] = (),
             hooks: Sequence[str] = ()) -> None:
        """Insert or refresh this worker's row: its heartbeat, the actions it holds, and what it serves (the
        groups and hooks it takes), which the must-use plugin reads to keep PHP off exactly those."""
        w = self.t.workers
        values = {
            "heartbeat_at": now,
            "served_groups": json.dumps(sorted(set(groups))),
            "served_hooks": json.dumps(sorted(set(hooks))),
            "in_hand": len(in_hand_ids),
            "in_hand_ids": json.dumps(sorted(int(i) for i in in_hand_ids)),
            "stopped_at": now if stopped else None,
        }
        with self.engine.begin() as conn:
            res = conn.execute(update(w).where(w.c.worker_id == worker_id).values(**values))
            if res.rowcount == 0:
                conn.execute(insert(w).values(worker_id=worker_id, host=host, pid=pid, version=version,
                                              started_at=started_at, **values))

    @translate_errors
    def list(self) -> list[WorkerRow]:
        w = self.t.workers
        with self.engine.connect() as conn:
            have = {c["name"] for c in inspect(conn).get_columns(w.name)}  # an older table lacks served_*
            cols = [c for c in w.c if c.name in have]
            rows = conn.execute(select(*cols).order_by(w.c.heartbeat_at.desc()).limit(200)).mappings().all()
        return [
            WorkerRow(r["worker_id"], r["host"], int(r["pid"]), r["version"], r["started_at"], r["heartbeat_at"],
                      r["stopped_at"], int(r["in_hand"]), _names(r.get("served_groups")), _names(r.get("served_hooks")))
            for r in rows
        ]

    def served_pairs(self, now: datetime, limit_seconds: float) -> set[tuple[str, str]]:
        """(group, hook) pairs served by the live workers."""
        return {(g, h) for w in self.list() if w.live(now, limit_seconds) for g in w.groups for h in w.hooks}

    @translate_errors
    def live_count(self, now: datetime, limit_seconds: float) -> int:
        """Workers that sent a heartbeat within ``limit_seconds`` and have not stopped."""
        with self.engine.connect() as conn:
            return int(conn.execute(
                select(func.count()).select_from(self.t.workers).where(*self._live(now, limit_seconds))
            ).scalar_one())

    def _live(self, now: datetime, limit_seconds: float) -> tuple[Any, Any]:
        """Not stopped, and a heartbeat within ``limit_seconds`` (the SQL form of ``WorkerRow.live``)."""
        w = self.t.workers
        return w.c.stopped_at.is_(None), w.c.heartbeat_at >= now - timedelta(seconds=limit_seconds)

    @translate_errors
    def held_by_live(self, now: datetime, limit_seconds: float) -> set[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.t.workers.c.in_hand_ids).where(*self._live(now, limit_seconds))).all()
        held: set[int] = set()
        for (ids,) in rows:
            try:
                held.update(int(i) for i in json.loads(ids or "[]"))
            except (ValueError, TypeError):
                continue
        return held

    @retry_transient
    @translate_errors
    def forget(self, action_ids: Sequence[int], now: datetime, limit_seconds: float) -> int:
        """Drop recovered actions from the ``in_hand`` of workers that are no longer live; returns rows changed."""
        gone = {int(i) for i in action_ids}
        w = self.t.workers
        live = and_(*self._live(now, limit_seconds))
        changed = 0
        with self.engine.begin() as conn:
            rows = conn.execute(select(w.c.worker_id, w.c.in_hand_ids).where(w.c.in_hand > 0, ~live)).all()
            for worker_id, ids in rows:
                try:
                    held = [int(i) for i in json.loads(ids or "[]")]
                except (ValueError, TypeError):
                    held = []
                keep = [i for i in held if i not in gone]
                if len(keep) != len(held) or not held:
                    conn.execute(update(w).where(w.c.worker_id == worker_id)
                                 .values(in_hand=len(keep), in_hand_ids=json.dumps(keep)))
                    changed += 1
        return changed

    @translate_errors
    def orphans(self, hooks: Sequence[str], group_ids: Sequence[int], now: datetime, limit_seconds: float,
                limit: int = 200) -> list[tuple[int, str]]:
        """In-progress actions of these hooks/groups, untouched for ``limit_seconds``, held by no live worker."""
        if not hooks or not group_ids:
            return []
        a = self.t.actions
        cutoff = now - timedelta(seconds=limit_seconds)
        q = (
            select(a.c.action_id, a.c.hook)
            .where(
                a.c.status == Status.RUNNING.value,
                or_(a.c.last_attempt_gmt <= cutoff, a.c.last_attempt_gmt.is_(None)),
                and_(a.c.hook.in_(list(hooks)), a.c.group_id.in_(list(group_ids))),
            )
            .order_by(a.c.last_attempt_gmt)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            candidates = [(int(i), str(h)) for i, h in conn.execute(q)]
        if not candidates:
            return []
        held = self.held_by_live(now, limit_seconds)
        return [(i, h) for i, h in candidates if i not in held]
