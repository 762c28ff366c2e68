"""Selecting the served groups' actions for ``jobs list|show`` and the bulk forms of ``jobs retry|cancel``: the
filters (status, hook, activity window, the finer ``Narrow``), one page newest first, counts, keyset pages of ids
and each action's last error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from wch_bridge.models import Action, Status
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.queue.actions import ActionStore

#: Rows per purge transaction / per keyset page of the bulk commands.
BATCH = 500
#: Log messages that carry an action's error (AS 3.8 English source strings, section 4 of the reference).
ERROR_PREFIXES = ("action failed", "action marked as failed", "unexpected shutdown", "There was a failure")


def _activity_since(store: ActionStore, since: datetime) -> Any:
    """Scheduled or last attempted at or after ``since`` (two indexed columns, OR-ed)."""
    a = store.t.actions
    return or_(a.c.scheduled_date_gmt >= since, a.c.last_attempt_gmt >= since)


@dataclass(frozen=True)
class Narrow:
    """The finer filters of ``jobs list``: args text, a scheduled-date window, in-progress for too long."""

    args_contains: str | None = None  # in ``args`` or ``extended_args`` (LIKE, wildcards escaped)
    scheduled_after: datetime | None = None  # scheduled_date_gmt >= this
    scheduled_before: datetime | None = None  # scheduled_date_gmt < this
    started_before: datetime | None = None  # in-progress with last_attempt_gmt (start / last touch) <= this


def _narrow(store: ActionStore, n: Narrow) -> list[Any]:
    a = store.t.actions
    cond: list[Any] = []
    if n.args_contains:
        text = n.args_contains
        cond.append(or_(a.c.args.contains(text, autoescape=True), a.c.extended_args.contains(text, autoescape=True)))
    if n.scheduled_after is not None:
        cond.append(a.c.scheduled_date_gmt >= n.scheduled_after)
    if n.scheduled_before is not None:
        cond.append(a.c.scheduled_date_gmt < n.scheduled_before)
    if n.started_before is not None:
        cond += [a.c.status == Status.RUNNING.value, a.c.last_attempt_gmt <= n.started_before]
    return cond


def _filters(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str] | None = None, hook: str | None = None,
    since: datetime | None = None, narrow: Narrow | None = None,
) -> list[Any]:
    a = store.t.actions
    cond: list[Any] = [a.c.group_id.in_(list(gids))]
    if statuses:
        cond.append(a.c.status.in_(list(statuses)))
    if hook:
        cond.append(a.c.hook == hook)
    if since is not None:
        cond.append(_activity_since(store, since))
    if narrow is not None:
        cond += _narrow(store, narrow)
    return cond


# ---------------------------------------------------------------------------------------------- list / show
@translate_errors
def list_actions(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str] | None = None, hook: str | None = None,
    since: datetime | None = None, limit: int = 50, offset: int = 0, narrow: Narrow | None = None,
) -> tuple[list[Action], bool]:
    """One page, newest first (``action_id`` descending). Returns the page and whether more rows follow."""
    ids = list(gids)
    if not ids:
        return [], False
    a, g = store.t.actions, store.t.groups
    q = (
        select(a, func.coalesce(g.c.slug, "").label("group_slug"))
        .select_from(a.outerjoin(g, a.c.group_id == g.c.group_id))
        .where(*_filters(store, ids, statuses=statuses, hook=hook, since=since, narrow=narrow))
        .order_by(a.c.action_id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        rows = [store._row_to_action(r) for r in conn.execute(q)]  # noqa: SLF001 - same package
    return rows[:limit], len(rows) > limit


@translate_errors
def last_errors(store: ActionStore, action_ids: Sequence[int]) -> dict[int, str]:
    """The newest error-carrying log message of each action (bounded by the page it is called for)."""
    if not action_ids:
        return {}
    lg = store.t.logs
    like = or_(*[lg.c.message.like(f"{p}%") for p in ERROR_PREFIXES])
    q = (
        select(lg.c.action_id, lg.c.message)
        .where(lg.c.action_id.in_(list(action_ids)), like)
        .order_by(lg.c.log_id)
    )
    out: dict[int, str] = {}
    with store.engine.connect() as conn:
        for aid, msg in conn.execute(q):
            out[int(aid)] = str(msg)
    return out


# ---------------------------------------------------------------------------------------------- bulk selection
@translate_errors
def count_actions(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str], hook: str | None = None,
    since: datetime | None = None,
) -> int:
    ids = list(gids)
    if not ids:
        return 0
    with store.engine.connect() as conn:
        q = select(func.count()).select_from(store.t.actions).where(
            *_filters(store, ids, statuses=statuses, hook=hook, since=since)
        )
        return int(conn.execute(q).scalar_one())


@translate_errors
def due_pending_by_hook(store: ActionStore, gids: Iterable[int], hooks: Sequence[str], now: datetime) -> dict[str, int]:
    """Pending actions of ``hooks`` in the groups ``gids`` that are due at ``now``, counted per hook."""
    ids, names = list(gids), list(hooks)
    if not ids or not names:
        return {}
    a = store.t.actions
    q = (
        select(a.c.hook, func.count())
        .where(a.c.group_id.in_(ids), a.c.status == Status.PENDING.value, a.c.hook.in_(names),
               a.c.scheduled_date_gmt <= now)
        .group_by(a.c.hook)
    )
    with store.engine.connect() as conn:
        return {str(h): int(n) for h, n in conn.execute(q)}


@translate_errors
def action_ids_page(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str], hook: str | None = None,
    since: datetime | None = None, after_id: int = 0, limit: int = BATCH,
) -> list[int]:
    """The next ``limit`` matching ids above ``after_id``, ascending (keyset paging: one pass in total)."""
    ids = list(gids)
    if not ids:
        return []
    a = store.t.actions
    q = (
        select(a.c.action_id)
        .where(*_filters(store, ids, statuses=statuses, hook=hook, since=since), a.c.action_id > after_id)
        .order_by(a.c.action_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(q)]
