"""Is a persistent object cache in front of the site's transients? (issue 15 point 9)

With an object-cache drop-in (``wp-content/object-cache.php``: Redis, Memcached, ...) WordPress keeps transients in
the cache and ``get_transient()`` never reads ``{prefix}options``, where the bridge writes its results
(``wch_job_result_*``, ``wch_broadcast_summary_*``, ``wch_broadcast_result_*``, ``wch_cart_cleanup_last_result``).
The must-use plugin (0.3.0+) then serves those transients from the database, and says so in the option
``wch_bridge_php_side`` (``object_cache``, ``serves_transients``). Two ways to know, both read here:

* the drop-in file, next to ``wp-config.php`` (``WCH_BRIDGE_WP_CONFIG``): ``<dir>/wp-content/object-cache.php``, or
  under ``WP_CONTENT_DIR`` when wp-config.php defines it as a plain string; the bridge sees it only when it can
  read the site's files;
* the must-use plugin's report (from PHP's queue runs), readable wherever the database is.

Both are facts of the one health verdict (``health.ObjectCache``: the store reads the report with the other facts,
the drop-in is found here from ``settings.wp_config``), judged by ``health.object_cache_finding``: ``status``, the
report, ``/metrics`` and ``/healthz`` warn alike; ``schema check`` shows the same finding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wch_bridge import wpsettings
from wch_bridge.health import ObjectCache, object_cache_finding
from wch_bridge.owners import PHP_SIDE_OPTION, PhpSide
from wch_bridge.store import Engine
from wch_bridge.store.wordpress.base import WpBase


def drop_in(wp_config: str | None) -> Path | None:
    """The site's ``object-cache.php`` when it exists, found from the path of ``wp-config.php``; None otherwise."""
    if not wp_config:
        return None
    config = Path(wp_config)
    content = config.parent / "wp-content"
    try:
        php = wpsettings._strip_comments(config.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        php = ""
    m = re.search(r"\bdefine\s*\(\s*(['\"])WP_CONTENT_DIR\1\s*,\s*(" + wpsettings._STRING.pattern + r")\s*\)", php)
    if m and Path(wpsettings._php_string(m.group(2))).is_absolute():
        content = Path(wpsettings._php_string(m.group(2)))
    path = content / "object-cache.php"
    return path if path.is_file() else None


def site_drop_in(wp_config: str | None) -> str | None:
    """:func:`drop_in` as text: the health facts' ``ObjectCache.drop_in`` (``settings.wp_config`` given)."""
    path = drop_in(wp_config)
    return str(path) if path is not None else None


def facts(wp_config: str | None, php_side_raw: str | None) -> ObjectCache:
    """The drop-in next to ``wp_config`` and the must-use plugin's report (the raw ``wch_bridge_php_side``)."""
    return ObjectCache.seen(site_drop_in(wp_config), PhpSide.parse(php_side_raw))


@dataclass(frozen=True)
class Finding:
    """What ``schema check`` says about the site's object cache: ``level`` ``ok`` (in use, served by the must-use
    plugin) or ``warning`` (in use and the plugin cannot see the bridge's results), and the sentence: the health
    judge's (``health.object_cache_finding``), so ``status`` and the report warn alike."""

    level: str
    message: str
    drop_in: str | None
    reported_by_php: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "message": self.message, "drop_in": self.drop_in,
                "reported_by_php": self.reported_by_php}


def assess(wp_config: str | None, php_side_raw: str | None) -> Finding | None:
    """The finding, or None when no object cache is seen (no drop-in found, PHP did not report one)."""
    oc = facts(wp_config, php_side_raw)
    found = object_cache_finding(oc)
    return None if found is None else Finding(found.level, found.text, oc.drop_in, oc.reported)


def check(engine: Engine, prefix: str, wp_config: str | None) -> Finding | None:
    """``assess`` with the must-use plugin's report read from ``{prefix}options`` (None without that table)."""
    return assess(wp_config, WpBase(engine, prefix).get_option_raw(PHP_SIDE_OPTION))
