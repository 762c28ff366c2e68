"""``wch_process_sync_job`` ``{job_id, sync_type, entity_id, retry_count}`` (reference wch-plugin.md 2.1).

* ``product``: the product (or variation) read from posts/postmeta is upserted into the WhatsApp catalog with one
  ``items_batch`` call (``UPDATE`` + ``allow_upsert``; ``DELETE`` when it is not published); the plugin's post meta
  ``_wch_catalog_id``, ``_wch_sync_status``, ``_wch_last_synced``, ``_wch_sync_message`` is written.
* ``inventory``: availability and ``quantity_to_sell_on_facebook`` of the product / its variations.
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
from wch_bridge.timeutil import fmt
from wch_bridge.wcdata import Order, PriceFormat, Product
from wch_bridge.wpsettings import php_truthy
from wch_bridge.wpsettings import setting as setting_of

HOOK = hooks.SYNC_JOB
RESULT_TTL = 3600
AVAILABILITY = {"instock": "in stock", "outofstock": "out of stock", "onbackorder": "available for order"}
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
        result = _execute(job, sync_type, entity_id)
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
    store("success", result)
    summary = result.get("summary", f"{sync_type} #{entity_id} synced")
    return Outcome(message=summary, log_lines=(f"sync job {job_id}: {summary}",))


def _entity(entity_id: Any, what: str) -> int:
    try:
        number = int(str(entity_id).strip()) if entity_id not in (None, "", False) else 0
    except ValueError:
        number = 0
    if number <= 0:
        raise PermanentError(f"Invalid {what} ID: {str(entity_id)[:40]!r}")
    return number


def _execute(job: Job, sync_type: str, entity_id: Any) -> dict[str, Any]:
    try:
        if sync_type == "product":
            return _sync_product(job, _entity(entity_id, "product"), inventory_only=False)
        if sync_type == "inventory":
            return _sync_product(job, _entity(entity_id, "product"), inventory_only=True)
        if sync_type == "order":
            return _sync_order(job, _entity(entity_id, "order"))
    except ApiError as err:
        if err.category in RETRYABLE_CATEGORIES or err.category == wa.MALFORMED:
            raise _Retry(str(err)) from None
        raise PermanentError(str(err)) from None
    raise PermanentError(f"Unknown sync type: {sync_type}")


# ---------------------------------------------------------------------------------------------- catalog


def _item(product: Product, fmt_: PriceFormat, *, group: str | None, brand: str, now_ts: int,
          inventory_only: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"id": product.retailer_id,
                            "availability": AVAILABILITY.get(product.stock_status, "in stock")}
    if product.manage_stock and product.stock_quantity is not None:
        data["quantity_to_sell_on_facebook"] = max(0, product.stock_quantity)
    if inventory_only:
        return data
    price = product.regular_price if product.regular_price is not None else product.price
    if price is None:
        raise PermanentError(f"product #{product.id} has no price: it cannot be listed in the catalog")
    data.update({
        "title": plain_text(product.title, 200) or product.retailer_id,
        "description": plain_text(product.description, 9999) or plain_text(product.title, 200),
        "condition": "new",
        "price": fmt_.catalog(price),
        "link": product.permalink,
        "brand": brand,
    })
    if product.image_url:
        data["image_link"] = product.image_url
    if product.sale_active(now_ts) and product.sale_price is not None:
        data["sale_price"] = fmt_.catalog(product.sale_price)
    if group:
        data["item_group_id"] = group
    return data


def _catalog_requests(product: Product, fmt_: PriceFormat, *, brand: str, now_ts: int,
                      inventory_only: bool) -> tuple[list[Product], list[dict[str, Any]]]:
    """The products to sync (a variable product's variations, else the product) and the ``items_batch``
    requests for them: ``UPDATE`` when published, ``DELETE`` when not (never from an inventory-only sync)."""
    # item_group_id: the parent's ID for a variation (the plugin's rule); a variable product sends its variations
    group = (str(product.parent_id) if product.is_variation and product.parent_id else
             (product.retailer_id if product.variations else None))
    targets = [product] if product.is_variation or not product.variations else list(product.variations)
    requests: list[dict[str, Any]] = []
    for target in targets:
        gone = product.status != "publish" or target.status not in ("publish", "")
        if gone and not inventory_only:
            requests.append({"method": "DELETE", "data": {"id": target.retailer_id}})
        elif not gone:
            data = _item(target, fmt_, group=group if target is not product or product.is_variation else None,
                         brand=brand, now_ts=now_ts, inventory_only=inventory_only)
            requests.append({"method": "UPDATE", "data": data})
    return targets, requests


def _sync_product(job: Job, product_id: int, *, inventory_only: bool) -> dict[str, Any]:
    wp = need(job.services, "wp")
    product: Product | None = wp.get_product(product_id)
    if product is None:
        raise PermanentError(f"Product not found: #{product_id}")
    client = need(job.services, "whatsapp")
    fmt_ = wp.price_format()
    brand = plain_text(wp.get_option_raw("blogname") or "", 100) or "Store"
    now_ts = int(job.services.clock.timestamp())
    targets, requests = _catalog_requests(product, fmt_, brand=brand, now_ts=now_ts, inventory_only=inventory_only)
    if not requests:
        raise PermanentError(f"product #{product_id} is not published: nothing to update in the catalog")
    local_now = fmt(job.services.site.local(job.services.clock.now()))
    try:
        # an inventory-only update never creates an item: with upsert, Meta would create a partial item (no
        # title/price/link) for a product that is not in the catalog yet
        batch = client.catalog_items_batch(requests, allow_upsert=not inventory_only)
    except ApiError as err:
        if not inventory_only:
            wp.update_post_meta(product.id, {"_wch_sync_status": "error", "_wch_sync_message": str(err)[:500]})
        raise
    errors = [f"{s.get('retailer_id')}: {e.get('message')}" for s in batch.validation_status
              for e in (s.get("errors") or []) if isinstance(e, dict)]
    if not batch.handles:
        message = "catalog rejected every item: " + ("; ".join(errors) or "no handle returned")
        if inventory_only:
            message += " (an inventory update never creates an item: sync the product first)"
        if not inventory_only:
            wp.update_post_meta(product.id, {"_wch_sync_status": "error", "_wch_sync_message": message[:500]})
        raise PermanentError(message)
    status = "partial" if errors else "synced"
    handle = batch.handles[0]
    message = f"accepted by the catalog as batch {handle}" + (f"; rejected: {'; '.join(errors)}" if errors else "")
    # The plugin's meanings: _wch_stock_last_synced is a Unix time, _wch_last_synced site-local 'Y-m-d H:i:s';
    # _wch_catalog_id is Meta's own item id from an answer that carries one (items_batch answers carry none,
    # so it is left as it is).
    if inventory_only:
        wp.update_post_meta(product.id, {"_wch_stock_last_synced": str(now_ts)})
    else:
        wp.update_post_meta(product.id, {
            "_wch_sync_status": status, "_wch_last_synced": local_now, "_wch_sync_message": message[:500],
        })
        for target in targets:
            if target is not product:
                wp.update_post_meta(target.id, {"_wch_sync_status": status, "_wch_last_synced": local_now})
    kind = "inventory" if inventory_only else "product"
    result: dict[str, Any] = {
        "success": True, "product_id": product.id, "synced_at": local_now, "handle": handle,
        "items": [r["data"]["id"] for r in requests], "sync_status": status,
        "summary": f"{kind} #{product.id}: {len(requests)} catalog item(s) sent, batch {handle}"
                   + (f", {len(errors)} rejected" if errors else ""),
    }
    if inventory_only:
        result["stock"] = product.stock_quantity
    return result


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
