"""The facts behind the health verdict (``wch_bridge.health``), read once for ``status``, the report and the metrics.

Aggregates only (``COUNT`` / ``MIN`` over indexed columns), plus the heartbeat rows (at most 200), the hooks no
one runs (``store.ownership``) and the must-use plugin's word on a persistent object cache. The Action Scheduler
tables missing is a fact (``unreadable``), not an error."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, case, func, inspect, select

from wch_bridge.health import FAILURE_WINDOW, HealthFacts, ObjectCache, WorkerBeat
from wch_bridge.hooks import CART_CLEANUP
from wch_bridge.models import Status
from wch_bridge.owners import PHP_SIDE_OPTION, PhpSide
from wch_bridge.store import ownership
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.ledger import auth_pause, in_doubt_counts
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.wordpress.base import WpBase
from wch_bridge.store.workers import WorkerRegistry

#: Scheduled dates at or before this are AS's "zero" dates (never a real due time).
ZERO_DATE = datetime(1970, 1, 2)


@translate_errors
def read_health_facts(store: ActionStore, group_slugs: Sequence[str], now: datetime,
                      live_seconds: float, drop_in: str | None = None) -> HealthFacts:
    """Every fact :func:`wch_bridge.health.judge` needs, for the served groups at ``now``. ``drop_in``: the site's
    object-cache drop-in when the caller found one (``objectcache.site_drop_in(settings.wp_config)``: the store
    reads no site files); the must-use plugin's word on the object cache is read here."""
    have = set(inspect(store.engine).get_table_names())
    missing = [t.name for t in (store.t.actions, store.t.groups) if t.name not in have]
    if missing:
        return HealthFacts(now=now, live_seconds=live_seconds, unreadable=f"table {missing[0]} not found")
    a, g = store.t.actions, store.t.groups
    with store.engine.connect() as conn:
        slugs = dict(conn.execute(select(g.c.group_id, g.c.slug).where(g.c.slug.in_(list(group_slugs)))).all())
        ids = [int(i) for i in slugs]
        due = and_(a.c.group_id.in_(ids), a.c.status == Status.PENDING.value, a.c.scheduled_date_gmt <= now)
        past_due, oldest = conn.execute(
            select(func.count(), func.min(case((a.c.scheduled_date_gmt > ZERO_DATE, a.c.scheduled_date_gmt))))
            .where(due)
        ).one()
        finished = dict(conn.execute(
            select(a.c.status, func.count())
            .where(a.c.status.in_([Status.COMPLETE.value, Status.FAILED.value]), a.c.group_id.in_(ids),
                   a.c.last_attempt_gmt >= now - FAILURE_WINDOW, a.c.last_attempt_gmt <= now)
            .group_by(a.c.status)
        ).all())
        # The plugin guards the recurring cleanup on the hook alone (any group), as as_next_scheduled_action().
        cleanup = conn.execute(
            select(a.c.scheduled_date_gmt, func.coalesce(g.c.slug, ""))
            .select_from(a.outerjoin(g, a.c.group_id == g.c.group_id))
            .where(a.c.hook == CART_CLEANUP, a.c.status == Status.PENDING.value)
            .order_by(a.c.scheduled_date_gmt).limit(1)
        ).first()
        cleanup_running = conn.execute(
            select(a.c.action_id).where(a.c.hook == CART_CLEANUP, a.c.status == Status.RUNNING.value).limit(1)
        ).first() is not None
        api = doubt = None
        if store.t.messages.name in have:
            api, doubt = auth_pause(conn, store.t.messages, now - FAILURE_WINDOW), in_doubt_counts(conn, store.t.messages)
    return HealthFacts(
        now=now, live_seconds=live_seconds, groups=tuple(group_slugs),
        missing_groups=tuple(s for s in group_slugs if s not in slugs.values()),
        past_due=int(past_due), oldest_past_due=oldest,
        failed_24h=int(finished.get(Status.FAILED.value, 0)),
        completed_24h=int(finished.get(Status.COMPLETE.value, 0)),
        cleanup_next=None if cleanup is None else (cleanup[0] or now),
        cleanup_group=None if cleanup is None else str(cleanup[1]), cleanup_running=cleanup_running,
        unowned=tuple(ownership.unowned(store, group_slugs, live_seconds)),
        api_pause=api, in_doubt=doubt, workers=_workers(store),
        object_cache=ObjectCache.seen(drop_in, PhpSide.parse(WpBase(store.engine, store.prefix).get_option_raw(
            PHP_SIDE_OPTION))),
    )


def _workers(store: ActionStore) -> tuple[WorkerBeat, ...] | None:
    """Every heartbeat row (the latest 200), newest first; None when the table does not exist."""
    reg = WorkerRegistry(store.engine, store.t)
    if not reg.available():
        return None
    return tuple(reg.list())
