"""Paused hooks (``wch-bridge hooks pause|resume``): the non-autoloaded option ``wch_bridge_paused_hooks`` in the
site's ``{prefix}options`` table, a JSON object ``{"hook": {"paused_at": "Y-m-d H:i:s"}}``.

Every live worker reads it at most once per poll interval and stops taking the paused hooks (what runs finishes);
``status`` shows it. An option (not a bridge table) so that it needs no schema change and WordPress itself can
read it; autoload ``no`` keeps it out of every page load. Pausing and resuming are read-modify-write in one
transaction with the row locked (MariaDB/MySQL), so two operators never lose each other's change."""

from __future__ import annotations

import json
from typing import Any

from wch_bridge.errors import StoreError
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.queue.actions import ActionStore
from wch_bridge.store.wordpress.base import WpBase
from wch_bridge.timeutil import fmt

PAUSED_OPTION = "wch_bridge_paused_hooks"


def _parse(raw: str | None) -> dict[str, dict[str, Any]]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(h): (v if isinstance(v, dict) else {}) for h, v in value.items()}


@translate_errors
def paused_hooks(store: ActionStore) -> dict[str, dict[str, Any]]:
    """The paused hooks (``{hook: {"paused_at": ...}}``); empty when none, or when the site has no options table."""
    return _parse(WpBase(store.engine, store.prefix, clock=store.clock).get_option_raw(PAUSED_OPTION))


def set_paused(store: ActionStore, hook: str, paused: bool) -> bool:
    """Pause (``paused``) or resume ``hook``. Returns whether anything changed (False: it already was)."""
    opts = WpBase(store.engine, store.prefix, clock=store.clock)
    if not opts.options_table_exists():
        raise StoreError(f"no options table {store.prefix}options under prefix {store.prefix!r}: paused hooks are "
                         f"stored in the option {PAUSED_OPTION} (a WordPress site has that table)")
    changed: list[bool] = []

    @retry_transient
    @translate_errors
    def rmw() -> None:
        changed.clear()
        with store.engine.begin() as conn:
            exists, raw = opts._locked_value(conn, PAUSED_OPTION)  # noqa: SLF001 - same package
            current = _parse(raw)
            if paused == (hook in current):
                changed.append(False)
                return
            if paused:
                current[hook] = {"paused_at": fmt(store.now())}
            else:
                current.pop(hook, None)
            text = json.dumps(dict(sorted(current.items())), separators=(",", ":"))
            opts._write_option(conn, PAUSED_OPTION, text, "no", exists=exists)  # noqa: SLF001
            changed.append(True)

    opts._race_retry(rmw, f"option {PAUSED_OPTION}")  # noqa: SLF001
    return bool(changed and changed[0])
