"""What ``wch-bridge status`` reads for the served groups: the health facts (read once by
``store.reports.health_facts``, judged by ``wch_bridge.health``), the counts by hook and status and the newest
completion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from wch_bridge import hooks
from wch_bridge.health import HealthFacts, WorkerBeat, live_worker_seconds
from wch_bridge.models import Status
from wch_bridge.settings import Settings
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.operator_queries.served import served_group_ids
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.reports.health_facts import read_health_facts

CLEANUP_HOOK = hooks.CART_CLEANUP


@dataclass
class StatusSnapshot:
    """Everything ``wch-bridge status`` shows, for the served groups: the health facts (read once, judged by
    ``wch_bridge.health``) plus the counts by hook and status and the newest completion."""

    facts: HealthFacts
    groups: dict[int, str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # hook -> status -> n
    newest_completion: datetime | None = None

    @property
    def now(self) -> datetime:
        return self.facts.now

    @property
    def past_due(self) -> int:
        return self.facts.past_due

    @property
    def oldest_past_due(self) -> datetime | None:
        return self.facts.oldest_past_due

    @property
    def failed_24h(self) -> int:
        return self.facts.failed_24h

    @property
    def cleanup_pending(self) -> datetime | None:
        return self.facts.cleanup_next

    @property
    def cleanup_pending_group(self) -> str | None:
        return self.facts.cleanup_group

    @property
    def workers(self) -> list[WorkerBeat] | None:
        """Workers that have not recorded a stop (None: no heartbeat table)."""
        return None if self.facts.workers is None else [w for w in self.facts.workers if w.stopped_at is None]

    @property
    def unowned(self) -> list[dict[str, Any]]:
        return list(self.facts.unowned)

    @property
    def in_doubt(self) -> dict[str, Any] | None:
        return self.facts.in_doubt


@translate_errors
def status_snapshot(store: ActionStore, group_slugs: Sequence[str], now: datetime,
                    live_seconds: float | None = None, drop_in: str | None = None) -> StatusSnapshot:
    """``live_seconds``: :func:`wch_bridge.health.live_worker_seconds` of the caller's settings (default settings
    when None); ``drop_in``: the site's object-cache drop-in, when found (see ``read_health_facts``)."""
    a = store.t.actions
    limit = live_worker_seconds(Settings()) if live_seconds is None else live_seconds
    snap = StatusSnapshot(facts=read_health_facts(store, group_slugs, now, limit, drop_in),
                          groups=served_group_ids(store, group_slugs))
    ids = list(snap.groups)
    if ids:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(a.c.hook, a.c.status, func.count()).where(a.c.group_id.in_(ids)).group_by(a.c.hook, a.c.status)
            )
            for hook, status, n in rows:
                snap.counts.setdefault(str(hook), {})[str(status)] = int(n)
            snap.newest_completion = conn.execute(
                select(func.max(a.c.last_attempt_gmt)).where(a.c.group_id.in_(ids), a.c.status == Status.COMPLETE.value)
            ).scalar()
    return snap
