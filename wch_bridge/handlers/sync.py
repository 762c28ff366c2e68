"""``hooks.SYNC_JOB`` ``{job_id, sync_type, entity_id, retry_count}`` (reference wch-plugin.md 2.1).

* ``product``: the product (or variation) read from posts/postmeta is upserted into the WhatsApp catalog with one
  ``items_batch`` call (``UPDATE`` + ``allow_upsert``; ``DELETE`` when it is not published), within the plugin's
  ``catalog.*`` settings and leaving hidden products out; the plugin's post meta ``_wch_sync_status`` (``pending``
  until the batch handle reports ``finished``), ``_wch_last_synced``, ``_wch_sync_message`` is written
  (``handlers/catalog.py``).
* ``inventory``: availability and ``quantity_to_sell_on_facebook`` of the product / its variations.
* a job carrying ``batch_handle`` (scheduled by the two above) only checks that catalog batch again.
* ``order``: an order-status text to the customer, once per (order, status) through the message ledger.

Retry rule (``WCH_Sync_Job_Handler``): a retryable failure schedules a **new** action on this hook with the same
``job_id, sync_type, entity_id`` and ``retry_count+1`` after 60, 300, then 900 s, and this run ends ``complete``;
with the retries used up, or a permanent failure (unknown type, entity not found, an API error retrying cannot
fix), the action ends ``failed`` with the reason. Every outcome is stored in the transient
``wch_job_result_{job_id}`` (1 h): ``success``, ``retrying`` (with the next attempt's delay) or ``failed``."""

from __future__ import annotations

import secrets
import time
from typing import Any

from wch_bridge import hooks
from wch_bridge import whatsapp as wa
from wch_bridge.errors import ApiError, PermanentError
from wch_bridge.handlers import catalog
from wch_bridge.handlers.base import Job
from wch_bridge.handlers.common import (
    RETRYABLE_CATEGORIES,
    LedgerGuard,
    e164,
    keyed_args,
    masked,
    message_body,
    need,
    plain_text,
    release_on_db_outage,
    send_once,
)
from wch_bridge.handlers.inbox import record_outcome
from wch_bridge.models import NewAction, Outcome
from wch_bridge.retry import SYNC_MAX_RETRIES, sync_retry_delay
from wch_bridge.shop_data import Order, PriceFormat
from wch_bridge.timeutil import fmt
from wch_bridge.wpsettings import php_truthy
from wch_bridge.wpsettings import setting as setting_of

HOOK = hooks.SYNC_JOB
RESULT_TTL = 3600
STATUS_LABELS = {
    "pending": "awaiting payment", "processing": "being processed", "on-hold": "on hold",
    "completed": "completed", "cancelled": "cancelled", "refunded": "refunded", "failed": "failed",
}


def uniqid(prefix: str) -> str:
    """PHP ``uniqid($prefix)``: 13 hex digits of the current time in microseconds (plus a little randomness)."""
    usec = time.time_ns() // 1000
    return f"{prefix}{usec // 1_000_000:08x}{usec % 1_000_000 + secrets.randbelow(16):05x}"


class _Retry(Exception):  # noqa: N818 - internal signal: a retryable failure with its reason
    def __init__(self, reason: str) -> None:
        super().__init__(reason)


@release_on_db_outage
def handle(job: Job) -> Outcome:
    args = keyed_args(job, HOOK)
    wp = need(job.services, "wp")
    job_id = str(args.get("job_id") or uniqid("sync_"))
    sync_type = str(args.get("sync_type") or "unknown")
    entity_id = args.get("entity_id")
    try:
        retry_count = max(0, int(str(args.get("retry_count") or 0)))
    except ValueError:
        retry_count = 0

    def store(status: str, result: dict[str, Any]) -> None:
        ts = wp.local_timestamp()
        wp.set_transient(f"wch_job_result_{job_id}", {
            "job_id": job_id, "status": status, "result": result, "timestamp": ts, "expires_at": ts + RESULT_TTL,
        }, RESULT_TTL)

    try:
        result = _execute(job, sync_type, entity_id, args)
    except PermanentError as exc:
        store("failed", {"success": False, "error": str(exc)})
        raise
    except _Retry as exc:
        reason = str(exc)
        delay = sync_retry_delay(retry_count)
        if delay is None:
            message = f"{reason} (gave up after {SYNC_MAX_RETRIES} retries)"
            store("failed", {"success": False, "error": message, "retry_count": retry_count})
            raise PermanentError(message) from None
        store("retrying", {"success": False, "error": reason, "retry_count": retry_count,
                           "next_retry_count": retry_count + 1, "next_retry_in": delay})
        retry_args = {"job_id": job_id, "sync_type": sync_type, "entity_id": entity_id,
                      "retry_count": retry_count + 1}
        return Outcome(
            message=f"{sync_type} sync failed, retry {retry_count + 1}/{SYNC_MAX_RETRIES} in {delay} s: {reason}",
            log_lines=(f"sync job {job_id} ({sync_type} #{entity_id}) failed: {reason}",),
            follow_ups=(NewAction(HOOK, retry_args, delay_seconds=delay,
                                  purpose=f"retry {retry_count + 1}/{SYNC_MAX_RETRIES}"),),
        )
    poll = result.pop("_poll", None)  # the catalog batch is not finished yet: check it again later
    store("success", result)
    summary = result.get("summary", f"{sync_type} #{entity_id} synced")
    hook_args = {"job_id": job_id, "sync_type": sync_type, "entity_id": entity_id, "retry_count": retry_count}
    return Outcome(message=summary, log_lines=(f"sync job {job_id}: {summary}",),
                   follow_ups=(catalog.poll_action(hook_args, poll),) if poll else ())


def _entity(entity_id: Any, what: str) -> int:
    try:
        number = int(str(entity_id).strip()) if entity_id not in (None, "", False) else 0
    except ValueError:
        number = 0
    if number <= 0:
        raise PermanentError(f"Invalid {what} ID: {str(entity_id)[:40]!r}")
    return number


def _poll_count(args: dict[str, Any]) -> int:
    try:
        return max(0, int(str(args.get("batch_poll") or 0)))
    except ValueError:
        return 0


def _execute(job: Job, sync_type: str, entity_id: Any, args: dict[str, Any]) -> dict[str, Any]:
    try:
        if sync_type in ("product", "inventory") and args.get("batch_handle"):  # a check of a batch already sent
            batch = catalog.Batch.from_args(args, _entity(entity_id, "product"), sync_type == "inventory")
            return catalog.check(job, batch, polls_done=_poll_count(args))
        if sync_type == "product":
            return catalog.sync_product(job, _entity(entity_id, "product"), inventory_only=False)
        if sync_type == "inventory":
            return catalog.sync_product(job, _entity(entity_id, "product"), inventory_only=True)
        if sync_type == "order":
            return _sync_order(job, _entity(entity_id, "order"))
    except ApiError as err:
        if err.category in RETRYABLE_CATEGORIES or err.category == wa.MALFORMED:
            raise _Retry(str(err)) from None
        raise PermanentError(str(err)) from None
    raise PermanentError(f"Unknown sync type: {sync_type}")


# ---------------------------------------------------------------------------------------------- order


def order_text(order: Order, price: PriceFormat) -> str:
    name = order.billing_first_name.strip()
    label = STATUS_LABELS.get(order.status, order.status.replace("-", " "))
    lines = [f"Hi {name}!" if name else "Hello!", f"Your order #{order.id} is now {label}."]
    if order.items:
        lines.append("")
        lines.extend(f"- {plain_text(i.name, 100) or 'Product'} x{i.quantity}" for i in order.items)
    if order.total is not None:
        lines.extend(["", f"Total: {price.format(order.total)}"])
    lines.extend(["", "Thank you for shopping with us."])
    return "\n".join(lines)


def _not_sent(job: Job, order: Order, why: str) -> dict[str, Any]:
    summary = f"order #{order.id} '{order.status}': no message: {why}"
    return {"success": True, "order_id": order.id, "status": order.status, "sent": False, "skipped": why,
            "synced_at": fmt(job.services.site.local(job.services.clock.now())), "summary": summary}


def _order_gate(job: Job, order: Order, to: str) -> str | None:
    """Why the plugin would not message this customer about this order, or None (docs/plugin-contracts.md,
    "Order messages"): only orders that came through WhatsApp (``_wch_order``), only with
    ``notifications.order_status_updates`` on (default on), never a customer whose profile opted out."""
    wp = need(job.services, "wp")
    if not order.wch_order:
        return "the order did not come through WhatsApp (no _wch_order meta); the plugin notifies only those"
    if not php_truthy(setting_of(wp.wch_settings(), "notifications.order_status_updates", True)):
        return "order status updates are off in the plugin's settings (notifications.order_status_updates)"
    profile = wp.customer_profiles([to]).get(to)
    if profile is not None and profile.notification_opt_out:
        return f"customer {masked(to)} opted out of notifications (wch_customer_profiles.notification_opt_out)"
    return None


def _sync_order(job: Job, order_id: int) -> dict[str, Any]:
    wp = need(job.services, "wp")
    order: Order | None = wp.get_order(order_id)
    if order is None:
        raise PermanentError(f"Order not found: #{order_id}")
    if not order.phone.strip():
        raise PermanentError(f"order #{order_id} has no customer phone number (billing phone is empty)")
    to = e164(order.phone, order.billing_country)
    why = _order_gate(job, order, to)
    if why is not None:
        return _not_sent(job, order, why)
    client = need(job.services, "whatsapp")
    base = wp.price_format()
    price = PriceFormat(order.currency or base.currency, base.decimals, base.position, base.thousand_sep,
                        base.decimal_sep)
    body = message_body(to, "text", {"preview_url": False, "body": order_text(order, price)})

    def deliver(guard: LedgerGuard) -> tuple[Any, str, dict[str, Any]]:
        return client.send_message(body, guard=guard), "text", body

    out = send_once(job.services, f"order:{order.id}:{order.status}", recipient=to, kind="text", payload=body,
                    deliver=deliver, job=job)
    record_outcome(job.services, out, to=to, fallback_kind="text", fallback_payload=body,
                   order=(order.id, "status_update"))
    who = masked(to)
    if out.delivered:
        when = "" if out.status == "sent" else " (already sent earlier)"
        return {"success": True, "order_id": order.id, "status": order.status, "message_id": out.message_id,
                "synced_at": fmt(job.services.site.local(job.services.clock.now())),
                "summary": f"order #{order.id} '{order.status}' message sent to {who}{when}"}
    if out.status == "retry":
        raise _Retry(str(out.error))
    if out.status == "in_doubt" and out.entry.status == "sending":
        raise _Retry(f"the message for order #{order.id} '{order.status}' is being sent by another run")
    if out.doubtful:
        raise PermanentError(f"order #{order.id} '{order.status}' message to {who} is in doubt "
                             f"({out.entry.error_text or out.error}); not sent again "
                             "(wch-bridge messages list --status unknown)")
    if out.error is not None and out.error.category == wa.TEMPLATE:
        raise PermanentError(f"customer {who} is outside WhatsApp's 24-hour window ({out.error.code}): "
                             "order status updates need an approved template")
    if out.status == "skipped":
        raise PermanentError(f"order #{order.id} '{order.status}' message was not sent earlier "
                             f"({out.entry.status}: {out.entry.error_text}); not sent again")
    raise PermanentError(str(out.error) if out.error else f"order message not sent ({out.status})")
