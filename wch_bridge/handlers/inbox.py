"""Record a message the bridge sent in the plugin's inbox (``wch_conversations``/``wch_messages``) and, for order
messages, its ``wch_notification_log`` (docs/plugin-contracts.md, "Inbox"). Best effort after the send: the
message was delivered whatever happens here, so a database error is logged, never raised."""

from __future__ import annotations

from typing import Any

from wch_bridge.errors import StoreError
from wch_bridge.handlers.base import Services
from wch_bridge.handlers.common import SendOutcome


def inbox_content(kind: str, payload: Any) -> dict[str, Any]:
    """What the plugin stores in ``wch_messages.content``: ``{"text": body}`` for a text (as its inbox writes
    it), ``{<kind>: <object>}`` for the rest."""
    inner = payload.get(kind) if isinstance(payload, dict) else None
    if kind == "text" and isinstance(inner, dict):
        return {"text": inner.get("body", "")}
    return {kind: inner if inner is not None else payload}


def record_sent(services: Services, *, to: str, kind: str, payload: Any, message_id: str | None,
                order: tuple[int, str] | None = None) -> None:
    """``order``: ``(order_id, notification_type)`` for an order message (also logged in the notification log)."""
    wp = services.wp
    if wp is None or not message_id or not hasattr(wp, "record_outbound"):
        return
    now_local = services.site.local(services.clock.now())
    try:
        wp.record_outbound(to, kind, inbox_content(kind, payload), message_id, now_local)
        if order is not None:
            wp.log_notification(order_id=order[0], notification_type=order[1], phone=to,
                                wa_message_id=message_id, when_local=now_local)
    except StoreError as exc:
        services.log.warning("message %s was sent but not recorded in the shop's inbox: %s", message_id, exc)


def record_outcome(services: Services, out: SendOutcome, *, to: str, fallback_kind: str, fallback_payload: Any,
                   order: tuple[int, str] | None = None) -> None:
    """Record what :func:`send_once` just sent (only a fresh ``sent``: a re-run's ``already_sent`` was recorded
    the first time)."""
    if out.status != "sent":
        return
    entry = out.entry
    kind = out.kind or getattr(entry, "kind", None) or fallback_kind
    payload = getattr(entry, "payload", None) or fallback_payload
    record_sent(services, to=to, kind=kind, payload=payload, message_id=out.message_id, order=order)
