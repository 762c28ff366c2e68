"""``jobs purge``: old finished actions of the served groups and their log rows deleted in short batches, each
all or nothing, the status checked again by the DELETE."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select

from wch_bridge.errors import StoreError
from wch_bridge.models import Status
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.operator_queries.selection import BATCH
from wch_bridge.store.queue.actions import ActionStore

ZERO_DATE = "0000-00-00 00:00:00"
PURGEABLE = (Status.COMPLETE.value, Status.CANCELED.value, Status.FAILED.value)


def _older_than(store: ActionStore, cutoff: datetime) -> Any:
    """Last run at or before ``cutoff`` (AS's cleaner: ``last_attempt_gmt``); an action that never ran (zero or
    NULL ``last_attempt_gmt``, e.g. canceled while pending) is measured on ``scheduled_date_gmt`` instead."""
    a = store.t.actions
    ran = a.c.last_attempt_gmt > ZERO_DATE
    never_ran = or_(a.c.last_attempt_gmt.is_(None), a.c.last_attempt_gmt <= ZERO_DATE)
    return or_(and_(ran, a.c.last_attempt_gmt <= cutoff), and_(never_ran, a.c.scheduled_date_gmt <= cutoff))


def _purge_where(store: ActionStore, gids: Sequence[int], status: str, cutoff: datetime,
                 hook: str | None = None) -> list[Any]:
    if status not in PURGEABLE:
        raise ValueError(f"purge never touches {status!r} actions")
    a = store.t.actions
    where = [a.c.group_id.in_(list(gids)), a.c.status == status, _older_than(store, cutoff)]
    return [*where, a.c.hook == hook] if hook else where


@translate_errors
def count_purgeable(store: ActionStore, gids: Iterable[int], status: str, cutoff: datetime,
                    hook: str | None = None) -> int:
    ids = list(gids)
    if not ids:
        return 0
    with store.engine.connect() as conn:
        q = select(func.count()).select_from(store.t.actions).where(*_purge_where(store, ids, status, cutoff, hook))
        return int(conn.execute(q).scalar_one())


@dataclass(frozen=True)
class PurgeBatch:
    actions: int  # action rows deleted
    logs: int  # log rows deleted
    last_id: int  # keyset position for the next batch (0: nothing was left)


@retry_transient
@translate_errors
def purge_batch(
    store: ActionStore, gids: Sequence[int], status: str, cutoff: datetime, *, after_id: int = 0,
    limit: int = BATCH, hook: str | None = None,
) -> PurgeBatch:
    """Delete up to ``limit`` matching actions above ``after_id`` and their log rows, in one short transaction.

    The DELETE is guarded on the status again (only complete/canceled/failed rows are ever deleted)."""
    ids_served = list(gids)
    if not ids_served:
        return PurgeBatch(0, 0, 0)
    a, lg = store.t.actions, store.t.logs
    where = _purge_where(store, ids_served, status, cutoff, hook)
    with store.engine.begin() as conn:
        # a plain read (no lock); the DELETE names the rows by primary key and checks the status again
        sel = select(a.c.action_id).where(*where, a.c.action_id > after_id).order_by(a.c.action_id).limit(limit)
        ids = [int(r[0]) for r in conn.execute(sel)]
        if not ids:
            return PurgeBatch(0, 0, 0)
        gone = conn.exec_driver_sql(store.sql.purge(len(ids)), (*ids, status)).rowcount
        if gone != len(ids):  # someone changed a row meanwhile: never leave logs without their action
            raise StoreError(f"purge: {gone} of {len(ids)} rows deleted (some changed meanwhile); batch rolled back, "
                             "run the command again")
        logs = conn.execute(delete(lg).where(lg.c.action_id.in_(ids))).rowcount
    return PurgeBatch(int(gone), int(logs), max(ids))
