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
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wch_bridge import wpsettings
from wch_bridge.store import Engine
from wch_bridge.store.wordpress.base import WpBase

#: Option the must-use plugin writes from PHP's claims (see owners.PHP_SIDE_OPTION).
PHP_SIDE_OPTION = "wch_bridge_php_side"
RESULT_TRANSIENTS = "wch_job_result_*, wch_broadcast_summary_*, wch_broadcast_result_*, wch_cart_cleanup_last_result"


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


@dataclass(frozen=True)
class Finding:
    """What the bridge knows about the site's object cache: ``level`` ``ok`` (in use, served by the must-use
    plugin) or ``warning`` (in use and the plugin cannot see the bridge's results), and the sentence."""

    level: str
    message: str
    drop_in: str | None
    reported_by_php: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "message": self.message, "drop_in": self.drop_in,
                "reported_by_php": self.reported_by_php}


def assess(wp_config: str | None, php_side_raw: str | None) -> Finding | None:
    """The finding, or None when no object cache is seen (no drop-in found, PHP did not report one)."""
    path = drop_in(wp_config)
    try:
        doc = json.loads(php_side_raw) if php_side_raw else None
    except ValueError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    reported = bool(doc["object_cache"]) if "object_cache" in doc else None
    if path is None and not reported:
        return None
    where = f"{path}" if path is not None else "reported by the must-use plugin"
    if doc.get("serves_transients") and reported:
        return Finding("ok", f"a persistent object cache is in use ({where}): the must-use plugin serves the "
                       f"bridge's results ({RESULT_TRANSIENTS}) to WordPress from the database",
                       str(path) if path else None, reported)
    return Finding("warning", f"a persistent object cache is in use ({where}): WordPress reads transients from it, "
                   f"not from the options table, so the plugin does not see the bridge's results ({RESULT_TRANSIENTS})"
                   "; install the must-use plugin docker/mu-plugins/wch-bridge.php 0.3.0+ (it serves them from the "
                   "database) and let PHP's queue run once", str(path) if path else None, reported)


def assess_env(php_side_raw: str | None) -> Finding | None:
    """``assess`` with ``WCH_BRIDGE_WP_CONFIG`` from the environment."""
    return assess(os.environ.get("WCH_BRIDGE_WP_CONFIG") or None, php_side_raw)


def check(engine: Engine, prefix: str) -> Finding | None:
    """``assess_env`` with the must-use plugin's report read from ``{prefix}options`` (None without that table)."""
    return assess_env(WpBase(engine, prefix).get_option_raw(PHP_SIDE_OPTION))
