"""Cheap aggregate reads for the Prometheus gauges and the ``/readyz`` probe (``wch_bridge.metrics``).

Every function is one or two GROUP BY / MIN / COUNT statements over indexed columns (status + scheduled date,
hook, the ledger's status); nothing loads rows into Python. The metrics collector caches the results for a few
seconds, so a scrape storm never turns into a query storm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, inspect, select, text

from wch_bridge.models import Status
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.queue.actions import ActionStore

__all__ = ["QueueGauges", "ledger_counts", "heartbeat_at", "queue_gauges", "readiness"]

QUEUE_STATUSES = (Status.PENDING.value, Status.RUNNING.value)


@dataclass
class QueueGauges:
    depth: dict[tuple[str, str], int] = field(default_factory=dict)  # (hook, status) -> n (pending, in-progress)
    past_due: dict[str, int] = field(default_factory=dict)  # hook -> pending actions due now or earlier
    oldest_due: dict[str, datetime] = field(default_factory=dict)  # hook -> earliest scheduled date of those


@translate_errors
def queue_gauges(store: ActionStore, group_slugs: Sequence[str], now: datetime) -> QueueGauges:
    """Queue depth by hook and status, and past-due count and oldest due date by hook, in the served groups."""
    a, g = store.t.actions, store.t.groups
    out = QueueGauges()
    with store.engine.connect() as conn:
        gids = [int(r[0]) for r in conn.execute(select(g.c.group_id).where(g.c.slug.in_(list(group_slugs))))]
        if not gids:
            return out
        due = and_(a.c.status == Status.PENDING.value, a.c.scheduled_date_gmt <= now)
        rows = conn.execute(
            select(
                a.c.hook, a.c.status, func.count(),
                func.sum(case((due, 1), else_=0)),
                func.min(case((due, a.c.scheduled_date_gmt), else_=None)),
            )
            .where(a.c.group_id.in_(gids), a.c.status.in_(QUEUE_STATUSES))
            .group_by(a.c.hook, a.c.status)
        )
        for hook, status, n, n_due, oldest in rows:
            out.depth[(str(hook), str(status))] = int(n)
            if n_due:
                out.past_due[str(hook)] = out.past_due.get(str(hook), 0) + int(n_due)
            if oldest is not None:
                out.oldest_due[str(hook)] = oldest
    return out


@translate_errors
def ledger_counts(store: ActionStore) -> list[tuple[str, int | None, int]]:
    """``(status, error_code, n)`` over the message ledger; empty when the table does not exist yet."""
    m = store.t.messages
    if m.name not in inspect(store.engine).get_table_names():
        return []
    with store.engine.connect() as conn:
        rows = conn.execute(select(m.c.status, m.c.error_code, func.count()).group_by(m.c.status, m.c.error_code))
        return [(str(s), int(c) if c is not None else None, int(n)) for s, c, n in rows]


@translate_errors
def heartbeat_at(store: ActionStore, worker_id: str) -> datetime | None:
    """This worker's last heartbeat written to ``{prefix}wch_bridge_workers`` (None: none yet / no table)."""
    w = store.t.workers
    if w.name not in inspect(store.engine).get_table_names():
        return None
    with store.engine.connect() as conn:
        return conn.execute(select(w.c.heartbeat_at).where(w.c.worker_id == worker_id)).scalar()


#: Tables the worker needs: Action Scheduler's three, and the bridge's ledger and heartbeats.
READY_TABLES = ("actions", "groups", "logs", "messages", "workers")


def readiness(store: ActionStore) -> tuple[bool, str]:
    """``(ok, reason)``: the database answers and every table the worker uses exists. Never raises."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        have = set(inspect(store.engine).get_table_names())
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        return False, f"database unreachable: {type(exc).__name__}"
    missing = [getattr(store.t, t).name for t in READY_TABLES if getattr(store.t, t).name not in have]
    if missing:
        return False, "missing tables: " + ", ".join(missing)
    return True, "ready"
