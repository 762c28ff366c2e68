"""Who runs each (group, hook): the bridge, PHP's Action Scheduler runner, or nobody. Pure decisions, no I/O.

The bridge owns the (group, hook) pairs its live workers publish with their heartbeats, plus the pairs last
published at a worker start (the non-autoloaded option ``wch_bridge_owned``), which stay the bridge's while it is
down unless the must-use plugin's failover (``WCH_BRIDGE_FAILOVER_AFTER``) gave them back to PHP. Before any
worker has published, the bridge would own its table of hooks in the groups it serves.

PHP runs a pair the bridge does not own when the must-use plugin says (option ``wch_bridge_php_side``, written
from PHP's own claims) that PHP has a callback for the hook and does not keep PHP off the whole group. Without
that word from PHP nothing is assumed: such a hook is run by nobody."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wch_bridge import hooks

BRIDGE, PHP, NOBODY = "bridge", "php", "nobody"
#: Option the bridge writes at each worker start: the (group, hook) pairs it owns, for the must-use plugin.
OWNED_OPTION = "wch_bridge_owned"
#: Option the must-use plugin writes from PHP's claims: its mode, the groups it keeps PHP off, its hooks.
PHP_SIDE_OPTION = "wch_bridge_php_side"

Pair = tuple[str, str]


def pairs_json(pairs: Iterable[Pair], *, now: str) -> str:
    """The ``wch_bridge_owned`` value: ``{"v": 1, "published_gmt": ..., "groups": {group: [hooks]}}``."""
    groups: dict[str, list[str]] = {}
    for group, hook in sorted(set(pairs)):
        groups.setdefault(group, []).append(hook)
    return json.dumps({"v": 1, "published_gmt": now, "groups": groups}, separators=(",", ":"))


def parse_pairs(raw: Any) -> set[Pair] | None:
    """Pairs from a ``wch_bridge_owned`` value; None when missing or unreadable."""
    try:
        doc = json.loads(raw) if isinstance(raw, str | bytes) else None
        groups = doc.get("groups") if isinstance(doc, dict) else None
    except ValueError:
        return None
    if not isinstance(groups, dict):
        return None
    return {(str(g), str(h)) for g, hs in groups.items() if isinstance(hs, list) for h in hs}


@dataclass(frozen=True)
class PhpSide:
    """What the must-use plugin reported: ``mode`` ``hooks`` (hook-level exclusion) or ``groups`` (whole groups
    kept off PHP), the groups it excludes whole, the ``wch*`` hooks PHP has callbacks for, failover state, and
    (0.3.0+) whether WordPress uses a persistent object cache and the plugin serves the bridge's transients."""

    mode: str = ""
    excluded_groups: frozenset[str] = frozenset()
    php_hooks: frozenset[str] = frozenset()
    failover: bool = False
    seen_gmt: str = ""
    object_cache: bool | None = None  # None: the plugin did not say
    serves_transients: bool = False

    @classmethod
    def parse(cls, raw: Any) -> PhpSide | None:
        try:
            doc = json.loads(raw) if isinstance(raw, str | bytes) else None
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        lists = {k: doc.get(k) if isinstance(doc.get(k), list) else [] for k in ("excluded_groups", "php_hooks")}
        return cls(mode=str(doc.get("mode") or ""), excluded_groups=frozenset(map(str, lists["excluded_groups"])),
                   php_hooks=frozenset(map(str, lists["php_hooks"])), failover=bool(doc.get("failover")),
                   seen_gmt=str(doc.get("seen_gmt") or ""),
                   object_cache=bool(doc["object_cache"]) if "object_cache" in doc else None,
                   serves_transients=bool(doc.get("serves_transients")))


@dataclass
class Owners:
    """Decides the owner of a (group, hook)."""

    live_pairs: set[Pair] = field(default_factory=set)
    published: set[Pair] | None = None
    served_groups: tuple[str, ...] = ()
    php: PhpSide | None = None

    @property
    def bridge_pairs(self) -> set[Pair]:
        if self.php is not None and self.php.failover:
            return set(self.live_pairs)  # PHP took the owned hooks back while no worker was live
        if not self.live_pairs and self.published is None:
            return {(g, h) for g in self.served_groups for h in hooks.NAMES}  # what `run` would serve
        return set(self.live_pairs) | (self.published or set())

    def owner(self, group: str, hook: str) -> str:
        if (group, hook) in self.bridge_pairs:
            return BRIDGE
        php = self.php
        if php is None or (php.mode == "groups" and group in php.excluded_groups) or hook not in php.php_hooks:
            return NOBODY
        return PHP
