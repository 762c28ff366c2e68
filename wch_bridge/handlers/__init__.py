"""Hook -> handler registry. ``default_registry()`` lists every hook the bridge serves."""

from __future__ import annotations

from wch_bridge.handlers.base import Handler, Job, Services

__all__ = ["Handler", "Job", "Services", "WHATSAPP_HOOKS", "default_registry"]

#: Hooks that call the WhatsApp API: served only when a client is configured (token + phone number id).
WHATSAPP_HOOKS = frozenset(
    {"wch_process_sync_job", "wch_send_broadcast_batch", "wch_process_abandoned_cart", "wch_retry_failed_message"}
)


def default_registry() -> dict[str, Handler]:
    """Every ``wch`` hook the bridge implements (one module per hook family)."""
    from wch_bridge.handlers import broadcast, carts, messages, sync

    return {
        sync.HOOK: sync.handle,
        broadcast.HOOK: broadcast.handle,
        carts.CLEANUP_HOOK: carts.handle_cleanup,
        carts.ABANDONED_HOOK: carts.handle_abandoned,
        messages.HOOK: messages.handle,
    }
