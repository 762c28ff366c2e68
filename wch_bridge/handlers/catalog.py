"""The catalog side of ``hooks.SYNC_JOB`` (``sync_type`` ``product`` / ``inventory``; docs/plugin-contracts.md
"Catalog").

* **Which products** (``product`` syncs): the plugin's ``catalog.*`` switches in ``wch_settings``
  (:func:`wpsettings.catalog_sync`): nothing is sent while ``catalog.sync_enabled`` is off; a product or variation
  outside the selection, or out of stock without ``catalog.include_out_of_stock``, is left out, as the plugin's
  ``validate_product`` leaves it out; a product whose catalog visibility is ``hidden`` is left out (the head's
  ``ProductSyncService::validateProduct``). Unpublished ones are deleted from the catalog.
* **Send**: one ``items_batch`` call (``UPDATE`` + ``allow_upsert``; an inventory-only update never upserts).
* **Synced only when Meta says so**: the answer's handle is checked with ``check_batch_request_status`` at once;
  until it reports ``finished`` the items stay ``_wch_sync_status`` = ``pending`` and a check is scheduled as a
  follow-up ``hooks.SYNC_JOB`` carrying ``batch_handle`` (60 s, 2, 5, 10, 15, 30, 60 min), after which the
  items stay ``pending`` and the action fails. When it finishes: ``synced`` (or ``partial`` / ``error`` with the
  rejected items); an inventory update writes ``_wch_stock_last_synced`` only then."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wch_bridge import hooks
from wch_bridge import whatsapp as wa
from wch_bridge.errors import ApiError, PermanentError
from wch_bridge.handlers.base import Job
from wch_bridge.handlers.common import RETRYABLE_CATEGORIES, need, plain_text
from wch_bridge.models import NewAction
from wch_bridge.shop_data import PriceFormat, Product
from wch_bridge.timeutil import fmt
from wch_bridge.wpsettings import CatalogSync, catalog_sync

AVAILABILITY = {"instock": "in stock", "outofstock": "out of stock", "onbackorder": "available for order"}
#: seconds before each further batch-status check (the first is made right after the send)
POLL_DELAYS = (60, 120, 300, 600, 900, 1800, 3600)
PENDING, SYNCED, PARTIAL, ERROR = "pending", "synced", "partial", "error"
_NOTES = 20  # at most this many "id: reason" notes travel in a check's args


@dataclass
class Batch:
    """What was sent in one ``items_batch`` call and what is known about it (travels in a check's args)."""

    product_id: int
    inventory_only: bool
    handle: str = ""
    items: list[str] = field(default_factory=list)  # retailer ids Meta accepted
    rejected: dict[str, str] = field(default_factory=dict)  # retailer id -> why (validation_status)
    excluded: list[str] = field(default_factory=list)  # "id: why" left out by the plugin's rules

    def args(self) -> dict[str, Any]:
        return {"batch_handle": self.handle, "batch_items": self.items,
                "batch_rejected": dict(list(self.rejected.items())[:_NOTES]), "batch_excluded": self.excluded[:_NOTES]}

    @classmethod
    def from_args(cls, args: dict[str, Any], product_id: int, inventory_only: bool) -> Batch:
        rejected, items, excluded = args.get("batch_rejected"), args.get("batch_items"), args.get("batch_excluded")
        return cls(product_id, inventory_only, str(args.get("batch_handle") or ""),
                   [str(i) for i in items if i not in (None, "")] if isinstance(items, list) else [],
                   {str(k): str(v) for k, v in rejected.items()} if isinstance(rejected, dict) else {},
                   [str(x) for x in excluded] if isinstance(excluded, list) else [])


def item(product: Product, fmt_: PriceFormat, *, group: str | None, brand: str, now_ts: int,
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


def left_out(target: Product, product: Product, rules: CatalogSync) -> str | None:
    """Why the plugin would not sync ``target`` (``product`` itself or one of its variations), or None."""
    if product.catalog_visibility == "hidden":
        return "the product is hidden from the catalog (product_visibility)"
    if not rules.configured:
        return None
    if not target.in_stock and not rules.include_out_of_stock:
        return "out of stock (catalog.include_out_of_stock is off)"
    ids = {target.id, target.parent_id, product.id} - {0}
    if rules.products is not None and not ids & rules.products:
        return "not in the plugin's product selection (catalog.sync_products)"
    if rules.categories is not None and not set(product.category_ids) & rules.categories:
        return "not in the plugin's selected categories (catalog.categories)"
    return None


def _rules(wp: Any) -> CatalogSync:
    """The plugin's catalog switches; a site without the ``wch_settings`` option applies none of them."""
    return catalog_sync(wp.wch_settings() if wp.get_option_raw("wch_settings") is not None else None)


def _requests(job: Job, product: Product, targets: list[Product], batch: Batch) -> list[dict[str, Any]]:
    wp = need(job.services, "wp")
    rules = _rules(wp) if not batch.inventory_only else CatalogSync()
    if not rules.enabled:
        return []
    if not batch.inventory_only and not product.is_variation and product.variations:
        why = left_out(product, product, rules)  # the plugin validates the variable product before its variations
        if why is not None:
            batch.excluded.append(f"{product.id}: {why}")
            return []
    fmt_ = wp.price_format()
    brand = plain_text(wp.get_option_raw("blogname") or "", 100) or "Store"
    now_ts = int(job.services.clock.timestamp())
    # item_group_id: the parent's ID for a variation (the plugin's rule); a variable product sends its variations
    group = (str(product.parent_id) if product.is_variation and product.parent_id else
             (product.retailer_id if product.variations else None))
    out: list[dict[str, Any]] = []
    for target in targets:
        gone = product.status != "publish" or target.status not in ("publish", "")
        if gone and not batch.inventory_only:
            out.append({"method": "DELETE", "data": {"id": target.retailer_id}})
            continue
        why = None if gone or batch.inventory_only else left_out(target, product, rules)
        if why is not None:
            batch.excluded.append(f"{target.id}: {why}")
        elif not gone:
            data = item(target, fmt_, group=group if target is not product or product.is_variation else None,
                        brand=brand, now_ts=now_ts, inventory_only=batch.inventory_only)
            out.append({"method": "UPDATE", "data": data})
    return out


def _now_local(job: Job) -> str:
    return fmt(job.services.site.local(job.services.clock.now()))


def _mark(job: Job, post_id: int, status: str, message: str | None = None) -> None:
    """The plugin's ``update_sync_status``: ``_wch_sync_status``, ``_wch_last_synced`` (site-local) and the message."""
    values = {"_wch_sync_status": status, "_wch_last_synced": _now_local(job)}
    if message is not None:
        values["_wch_sync_message"] = message[:500]
    need(job.services, "wp").update_post_meta(post_id, values)


def sync_product(job: Job, product_id: int, *, inventory_only: bool) -> dict[str, Any]:
    """Send the product (or its variations) in one ``items_batch`` call, then check the batch (see the module)."""
    wp = need(job.services, "wp")
    product: Product | None = wp.get_product(product_id)
    if product is None:
        raise PermanentError(f"Product not found: #{product_id}")
    targets = [product] if product.is_variation or not product.variations else list(product.variations)
    batch = Batch(product.id, inventory_only)
    requests = _requests(job, product, targets, batch)
    if not requests:
        return _nothing_sent(job, product, batch)
    client = need(job.services, "whatsapp")
    try:
        # an inventory-only update never creates an item: with upsert, Meta would create a partial item (no
        # title/price/link) for a product that is not in the catalog yet
        answer = client.catalog_items_batch(requests, allow_upsert=not inventory_only)
    except ApiError as err:
        if not inventory_only:
            wp.update_post_meta(product.id, {"_wch_sync_status": ERROR, "_wch_sync_message": str(err)[:500]})
        raise
    for status in answer.validation_status:
        errors = [str(e.get("message")) for e in status.get("errors") or [] if isinstance(e, dict)]
        if errors:
            batch.rejected[str(status.get("retailer_id"))] = "; ".join(errors)[:200]
    if not answer.handles:
        message = "catalog rejected every item: " + (_notes(batch.rejected) or "no handle returned")
        if inventory_only:
            message += " (an inventory update never creates an item: sync the product first)"
        else:
            wp.update_post_meta(product.id, {"_wch_sync_status": ERROR, "_wch_sync_message": message[:500]})
        raise PermanentError(message)
    batch.handle = answer.handles[0]
    batch.items = [r["data"]["id"] for r in requests if r["data"]["id"] not in batch.rejected]
    if not inventory_only:  # accepted, not yet applied: "pending" until the batch handle reports finished
        for target in targets:
            rid = target.retailer_id
            if target is not product and (rid in batch.items or rid in batch.rejected):
                _mark(job, target.id, PENDING if rid in batch.items else ERROR, batch.rejected.get(rid))
        _mark(job, product.id, PENDING, f"sent to the catalog as batch {batch.handle}; waiting for Meta to "
                                        "process it" + (f"; rejected: {_notes(batch.rejected)}" if batch.rejected else ""))
    result = check(job, batch, polls_done=0)
    if inventory_only:
        result["stock"] = product.stock_quantity
    return result


def _notes(rejected: dict[str, str]) -> str:
    return "; ".join(f"{rid}: {why}" for rid, why in rejected.items())


def _nothing_sent(job: Job, product: Product, batch: Batch) -> dict[str, Any]:
    """Nothing to send: sync is off in the plugin's settings, or every item is left out by its rules (the plugin
    then writes no post meta); an unpublished product with nothing to delete is an error, as before."""
    wp = need(job.services, "wp")
    if batch.inventory_only or (not batch.excluded and _rules(wp).enabled):
        raise PermanentError(f"product #{product.id} is not published: nothing to update in the catalog")
    why = ("product sync is off in the plugin's settings (catalog.sync_enabled)" if not batch.excluded else
           "left out by the plugin's catalog rules: " + "; ".join(batch.excluded))
    summary = f"product #{product.id}: not sent to the catalog: {why}"
    return {"success": True, "product_id": product.id, "synced": False, "skipped": why[:500],
            "synced_at": _now_local(job), "summary": summary[:500]}


def check(job: Job, batch: Batch, *, polls_done: int) -> dict[str, Any]:
    """Ask Meta about the batch once: ``finished`` settles the items; anything else (or a retryable error)
    schedules the next check (``_poll`` in the result), up to ``len(POLL_DELAYS)`` more checks."""
    client = need(job.services, "whatsapp")
    kind = "inventory" if batch.inventory_only else "product"
    try:
        status = client.check_batch_status(batch.handle)
    except ApiError as err:
        if err.category not in RETRYABLE_CATEGORIES | {wa.MALFORMED, wa.HALT}:
            if not batch.inventory_only:
                _mark(job, batch.product_id, ERROR, f"batch {batch.handle}: status unavailable: {err}")
            raise PermanentError(f"catalog batch {batch.handle}: status unavailable: {err}") from None
        state = f"status check failed ({err})"
    else:
        if status.status == "finished":
            return _settle(job, batch, status)
        state = f"Meta reports '{status.status}'"
    result: dict[str, Any] = {
        "success": True, "product_id": batch.product_id, "handle": batch.handle, "items": batch.items,
        "sync_status": PENDING, "synced_at": _now_local(job),
    }
    if polls_done >= len(POLL_DELAYS):
        message = (f"catalog batch {batch.handle} not finished after {polls_done + 1} status checks ({state}); "
                   f"the items stay '{PENDING}': sync the {kind} again")
        raise PermanentError(message)
    delay = POLL_DELAYS[polls_done]
    result["summary"] = (f"{kind} #{batch.product_id}: {len(batch.items)} catalog item(s) sent, batch {batch.handle} "
                         f"pending ({state}); next check in {delay} s")
    result["_poll"] = (delay, {**batch.args(), "batch_poll": polls_done + 1})
    return result


def _settle(job: Job, batch: Batch, status: Any) -> dict[str, Any]:
    """The batch finished: items Meta names in its errors (``id``/``retailer_id``) and those rejected on
    submission are ``error``, the rest ``synced``; errors it names no item for make the product ``partial``."""
    failed = dict(batch.rejected)
    unnamed: list[str] = []
    for err in status.errors:
        rid, message = str(err.get("id") or err.get("retailer_id") or ""), str(err.get("message"))[:200]
        if rid in batch.items:
            failed[rid] = message
        elif message not in failed.values():
            unnamed.append(message)
    # errors Meta counts beyond those tied to an item (the rejected-on-submission ones are counted again here)
    extra = max(0, max(status.errors_total_count, len(status.errors)) - len(failed))
    synced = [rid for rid in batch.items if rid not in failed]
    now_ts = int(job.services.clock.timestamp())
    wp = need(job.services, "wp")
    if batch.inventory_only:
        wp.update_post_meta(batch.product_id, {"_wch_stock_last_synced": str(now_ts)})
        final = SYNCED if not failed and not extra else PARTIAL
    else:
        item_status = PARTIAL if extra else SYNCED
        for rid in batch.items:
            if rid != str(batch.product_id):
                _mark(job, int(rid), ERROR if rid in failed else item_status, failed.get(rid))
        final = (ERROR if not synced else SYNCED if not (failed or extra or batch.excluded) else PARTIAL)
        notes = [f"accepted by the catalog as batch {batch.handle}; Meta finished it"] + ([f"rejected: {_notes(failed)}"] if failed else [])
        notes += [f"{extra} error(s) not tied to an item: {'; '.join(unnamed) or 'see the batch'}"] if extra else []
        notes += [f"left out: {'; '.join(batch.excluded)}"] if batch.excluded else []
        _mark(job, batch.product_id, final, "; ".join(notes))
    kind = "inventory" if batch.inventory_only else "product"
    return {
        "success": True, "product_id": batch.product_id, "synced_at": _now_local(job), "handle": batch.handle,
        "items": batch.items, "sync_status": final,
        "summary": f"{kind} #{batch.product_id}: {len(batch.items)} catalog item(s) {final} (batch {batch.handle})"
                   + (f", {len(failed)} rejected" if failed else ""),
    }


def poll_action(hook_args: dict[str, Any], poll: tuple[int, dict[str, Any]]) -> NewAction:
    delay, extra = poll
    return NewAction(hooks.SYNC_JOB, {**hook_args, **extra}, delay_seconds=delay,
                     purpose=f"catalog batch check {extra['batch_poll']}/{len(POLL_DELAYS)}")
