"""Hook -> handler registry. ``default_registry()`` maps every hook of ``wch_bridge.hooks`` to its handler."""

from __future__ import annotations

from wch_bridge.handlers.base import Handler, Job, Services
from wch_bridge.hooks import WHATSAPP_HOOKS

__all__ = ["Handler", "Job", "Services", "WHATSAPP_HOOKS", "default_registry"]


def default_registry() -> dict[str, Handler]:
    """Every hook of the table in ``wch_bridge.hooks``, with its handler (one module per hook family)."""
    from wch_bridge import hooks
    from wch_bridge.handlers import broadcast, carts, messages, sync

    handlers: dict[str, Handler] = {
        sync.HOOK: sync.handle,
        broadcast.HOOK: broadcast.handle,
        carts.CLEANUP_HOOK: carts.handle_cleanup,
        carts.ABANDONED_HOOK: carts.handle_abandoned,
        messages.HOOK: messages.handle,
    }
    missing = set(hooks.NAMES) ^ set(handlers)
    if missing:  # the table and the handler modules must agree
        raise RuntimeError(f"hooks without a handler or handlers without a hook: {sorted(missing)}")
    return {name: handlers[name] for name in hooks.NAMES}
