"""What the bridge owns, published for the must-use plugin, and the facts behind "who runs each hook".

* Each worker's heartbeat row carries the groups and hooks it serves (``store.workers``).
* At each worker start the bridge writes the non-autoloaded option ``wch_bridge_owned``: its own (group, hook)
  pairs plus those of the other live workers. The must-use plugin reads it (with one direct query, never through
  an object cache) to keep PHP's claims off exactly those pairs, also while the bridge is down.
* The must-use plugin writes ``wch_bridge_php_side`` from PHP's claims: its mode and the ``wch*`` hooks PHP has
  callbacks for. ``owners()`` combines all three (``wch_bridge.owners``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select

from wch_bridge.models import Status
from wch_bridge.owners import OWNED_OPTION, PHP_SIDE_OPTION, Owners, Pair, PhpSide, pairs_json, parse_pairs
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.wordpress.base import WpBase
from wch_bridge.store.workers import WorkerRegistry
from wch_bridge.timeutil import fmt

#: Statuses counted per (group, hook) by ``hook_counts``.
COUNTED = (Status.PENDING.value, Status.RUNNING.value, Status.COMPLETE.value, Status.FAILED.value)


def _options(store: ActionStore) -> WpBase:
    return WpBase(store.engine, store.prefix, clock=store.clock)


def owners(store: ActionStore, groups: Sequence[str], live_seconds: float) -> Owners:
    """Who owns what now: the live workers' published pairs, the last published set, and PHP's word."""
    registry = WorkerRegistry(store.engine, store.t)
    live = registry.served_pairs(store.now(), live_seconds) if registry.available() else set()
    opts = _options(store)
    return Owners(live_pairs=live, published=parse_pairs(opts.get_option_raw(OWNED_OPTION)),
                  served_groups=tuple(groups), php=PhpSide.parse(opts.get_option_raw(PHP_SIDE_OPTION)))


def publish(store: ActionStore, own: Iterable[Pair], live_seconds: float) -> set[Pair] | None:
    """Write ``wch_bridge_owned`` (autoload ``no``): ``own`` plus the pairs of the other live workers. Returns the
    pairs written, or None when the site has no options table (a bare Action Scheduler schema)."""
    if not _options(store).options_table_exists():
        return None
    opts = _options(store)
    registry = WorkerRegistry(store.engine, store.t)
    pairs = set(own) | (registry.served_pairs(store.now(), live_seconds) if registry.available() else set())
    opts.update_option(OWNED_OPTION, pairs_json(pairs, now=fmt(store.now())), autoload="no")
    return pairs


@translate_errors
def hook_counts(store: ActionStore, groups: Sequence[str],
                statuses: Sequence[str] = COUNTED) -> list[tuple[str, str, str, int]]:
    """(group slug, hook, status, count) of the served groups for ``statuses`` (status, the leading column of AS's
    ``status_scheduled_date_gmt`` index, narrows the read; ``status`` and the report ask for pending only)."""
    ids = store.group_ids(groups)
    if not ids:
        return []
    slug = {gid: s for s, gid in ids.items()}
    a = store.t.actions
    q = (select(a.c.group_id, a.c.hook, a.c.status, func.count())
         .where(a.c.status.in_(list(statuses)), a.c.group_id.in_(list(slug)))
         .group_by(a.c.group_id, a.c.hook, a.c.status))
    with store.engine.connect() as conn:
        rows: list[Any] = list(conn.execute(q))
    return [(slug[int(g)], str(h), str(st), int(n)) for g, h, st, n in rows]


def unowned(store: ActionStore, groups: Sequence[str], live_seconds: float) -> list[dict[str, Any]]:
    """Pending actions of hooks no one runs, ``[{"group", "hook", "pending"}]``, most first."""
    who = owners(store, groups, live_seconds)
    out = [{"group": g, "hook": h, "pending": n} for g, h, _st, n in hook_counts(store, groups, (Status.PENDING.value,))
           if who.owner(g, h) == "nobody"]
    return sorted(out, key=lambda r: (-r["pending"], r["group"], r["hook"]))
