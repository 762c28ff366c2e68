"""``hooks.CART_CLEANUP`` ``[]`` (recurring hourly) and ``hooks.ABANDONED_CART`` ``{cart_id}``
(wch-plugin.md 2.3 and 2.4). Cart times are site-local, as the plugin writes them.

Cleanup: active carts idle for more than 72 h are deleted on every carts schema, as the plugin's cleanup hook does
(a cart kept as ``expired`` would block the customer's next cart: ``customer_phone`` is UNIQUE and the plugin opens
a cart with a plain INSERT); the transient ``wch_cart_cleanup_last_result`` (24 h) is written, as the plugin does,
when a run cleaned something: ``{deleted_count, expired_count (always 0), mode, expiry_date, timestamp}``.

Abandoned cart: only an ``active`` cart idle at least ``abandoned_cart_delay_hours`` (setting, else
``notifications.abandoned_cart_delay_hours`` of ``wch_settings``, default 24) and not reminded since its last update.
The reminder is plain text (item ``product_name`` or ``name``, quantity, total in the store currency, no HTML),
sent once per cart update (ledger key ``cart:{id}:{updated_at}``); then ``reminder_sent_at`` is set. Outside
WhatsApp's 24-hour window (131047) the template (``abandoned_cart_template`` setting, else ``wch_settings``) is
sent instead with body parameters {{1}} = the items on one line and {{2}} = the total; with no template
configured the action fails with that reason. A retryable API failure gets a ``hooks.RETRY_MESSAGE``
action, which also sets ``reminder_sent_at`` once it gets through."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from wch_bridge import hooks
from wch_bridge import whatsapp as wa
from wch_bridge.errors import ApiError, PermanentError
from wch_bridge.handlers.base import Job
from wch_bridge.handlers.common import (
    LedgerGuard,
    SendOutcome,
    int_arg,
    keyed_args,
    masked,
    message_body,
    need,
    plain_text,
    release_on_db_outage,
    send_once,
    setting,
    template_content,
)
from wch_bridge.handlers.inbox import record_outcome
from wch_bridge.models import NewAction, Outcome
from wch_bridge.retry import failed_send_delay
from wch_bridge.shop_data import Cart, PriceFormat
from wch_bridge.timeutil import fmt
from wch_bridge.wpsettings import plugin_settings

CLEANUP_HOOK = hooks.CART_CLEANUP
ABANDONED_HOOK = hooks.ABANDONED_CART
RETRY_HOOK = hooks.BY_NAME[ABANDONED_HOOK].retry_hook or hooks.RETRY_MESSAGE
CART_EXPIRY_HOURS = 72
CLEANUP_TTL = 86400
KEY_TIME = "%Y%m%d%H%M%S"


def cart_key(cart_id: int, updated_at: datetime | None) -> str:
    return f"cart:{cart_id}:{updated_at.strftime(KEY_TIME) if updated_at else 'never'}"


def parse_cart_key(key: str) -> tuple[int, datetime | None] | None:
    """``cart:{id}:{updated_at}`` -> (id, updated_at); None for other keys."""
    parts = key.split(":")
    if len(parts) != 3 or parts[0] != "cart" or not parts[1].isdigit():
        return None
    try:
        when = None if parts[2] == "never" else datetime.strptime(parts[2], KEY_TIME)
    except ValueError:
        return None
    return int(parts[1]), when


# ---------------------------------------------------------------------------------------------- cleanup


@release_on_db_outage
def handle_cleanup(job: Job) -> Outcome:
    services = job.services
    wp = need(services, "wp")
    now_local = services.site.local(services.clock.now())
    cutoff = now_local - timedelta(hours=CART_EXPIRY_HOURS)
    result = wp.delete_idle_carts(cutoff)
    if not result.table_found:
        line = f"table {wp.prefix}wch_carts not found: nothing to clean up"
        services.log.warning("%s", line)
        return Outcome(message=line, log_lines=(line,))
    if result.count:  # like the plugin: a run that found nothing leaves the last result in place
        wp.set_transient("wch_cart_cleanup_last_result", {
            "deleted_count": result.count,
            "expired_count": 0,
            "mode": result.mode,
            "expiry_date": fmt(cutoff),
            "timestamp": fmt(now_local),
        }, CLEANUP_TTL)
    line = (f"{result.count} active cart(s) idle since before {fmt(cutoff)} (site time) deleted (the customer's "
            "next cart needs the row gone: customer_phone is unique)")
    return Outcome(message=line, log_lines=(line,))


# ---------------------------------------------------------------------------------------------- abandoned cart


def reminder_text(cart: Cart, price: PriceFormat) -> str:
    lines = ["Hi! You left some items in your cart:", ""]
    lines.extend(f"- {plain_text(item.name, 100) or 'Product'} x{item.quantity}" for item in cart.items)
    lines.extend(["", f"Total: {price.format(cart.total)}", "", "Would you like to complete your order?"])
    return "\n".join(lines)


def recovery_parameters(wp: Any, cart: Cart, price: PriceFormat) -> list[str]:
    """The recovery template's body parameters as the plugin's head fills them (``RecoveryService``):
    ``{{1}}`` the customer's profile name (``there`` without one), ``{{2}}`` the number of items (the sum of the
    quantities), ``{{3}}`` the cart total. Plugin bug: the head prints the total as ``$`` + two decimals whatever
    the store currency; the bridge formats it in the store's currency."""
    profile = wp.customer_profiles([cart.customer_phone]).get(cart.customer_phone)
    name = (profile.name.strip() if profile is not None else "") or "there"
    return [name, str(sum(item.quantity for item in cart.items)), price.format(cart.total)]


def _skip(job: Job, cart_id: int, why: str) -> Outcome:
    line = f"cart #{cart_id}: no reminder: {why}"
    job.services.log.info("%s", line)
    return Outcome(message=line, log_lines=(line,))


@release_on_db_outage
def handle_abandoned(job: Job) -> Outcome:
    args = keyed_args(job, ABANDONED_HOOK)
    services = job.services
    wp = need(services, "wp")
    cart_id = int_arg(args, "cart_id", "Invalid cart ID")
    if not wp.carts_table_exists():
        raise PermanentError(f"table {wp.prefix}wch_carts not found (is the plugin installed under this prefix?)")
    cart: Cart | None = wp.get_cart(cart_id)
    if cart is None:
        return _skip(job, cart_id, "cart not found")
    if cart.status != "active":
        return _skip(job, cart_id, f"status is '{cart.status}', not 'active'")
    plugin = plugin_settings(wp.wch_settings())
    delay_hours = float(setting(services, "abandoned_cart_delay_hours", plugin.abandoned_cart_delay_hours))
    now_local = services.site.local(services.clock.now())
    if cart.updated_at is None or cart.updated_at > now_local - timedelta(hours=delay_hours):
        idle = (now_local - cart.updated_at).total_seconds() / 3600 if cart.updated_at else 0.0
        return _skip(job, cart_id, f"idle {idle:.1f} h, the reminder waits {delay_hours:g} h")
    if cart.reminder_sent_at is not None and cart.reminder_sent_at >= cart.updated_at:
        return _skip(job, cart_id, f"already reminded at {fmt(cart.reminder_sent_at)} since its last update")
    if cart.items_error:
        raise PermanentError(f"cart #{cart_id}: {cart.items_error}; no reminder sent (a reminder listing no items "
                             "would mislead the customer)")
    if not cart.customer_phone.strip():
        raise PermanentError(f"cart #{cart_id}: No customer phone number")
    client = need(services, "whatsapp")
    to = wa.normalize_phone(cart.customer_phone)
    price = wp.price_format()
    body = message_body(to, "text", {"preview_url": False, "body": reminder_text(cart, price)})
    template = setting(services, "abandoned_cart_template") or plugin.abandoned_cart_template
    language = str(setting(services, "template_language") or "en_US")

    def deliver(guard: LedgerGuard) -> tuple[Any, str, dict[str, Any]]:
        try:
            return client.send_message(body, guard=guard), "text", body
        except ApiError as err:
            if err.category != wa.TEMPLATE:
                raise
            if not template:
                raise ApiError(
                    f"customer is outside WhatsApp's 24-hour window ({err.code}) and no abandoned-cart template "
                    "is configured (--abandoned-cart-template / WCH_BRIDGE_ABANDONED_CART_TEMPLATE, or "
                    "recovery.template_sequence_1 in wch_settings)",
                    code=err.code, http_status=err.http_status, category=wa.TEMPLATE) from None
            tpl = message_body(to, "template", template_content(
                str(template), language, recovery_parameters(wp, cart, price)))
            return client.send_message(tpl, guard=guard), "template", tpl

    out = send_once(services, cart_key(cart.id, cart.updated_at), recipient=to, kind="text", payload=body,
                    deliver=deliver, job=job)
    record_outcome(services, out, to=to, fallback_kind="text", fallback_payload=body)
    return _reminder_outcome(job, cart, out, to=to, template=template, now_local=now_local)


def _reminder_outcome(job: Job, cart: Cart, out: SendOutcome, *, to: str, template: Any,
                      now_local: datetime) -> Outcome:
    """What a reminder's send means for the action: done (and the cart marked reminded), a retry of the message,
    a skip (in doubt, or failed before), or a permanent error."""
    services, cart_id = job.services, cart.id
    who = masked(to)
    if out.delivered:
        need(services, "wp").mark_reminder_sent(cart.id, now_local, cart.updated_at)
        how = "template " + str(template) if out.kind == "template" else "text"
        earlier = "" if out.status == "sent" else " earlier"
        line = f"cart #{cart.id}: reminder sent{earlier} to {who} ({how}, {out.message_id})"
        services.log.info("%s", line)
        return Outcome(message=line, log_lines=(line,))
    if out.status == "retry":
        delay = failed_send_delay(out.entry.attempts, out.error.retry_after if out.error else None, used_up=60)
        line = f"cart #{cart.id}: reminder to {who} failed ({out.error}); retrying"
        return Outcome(message=line, log_lines=(line,), follow_ups=(
            NewAction(RETRY_HOOK, {"message_id": out.entry.id}, delay_seconds=delay,
                      purpose=f"retry of message #{out.entry.id}"),))
    if out.doubtful:
        return _skip(job, cart_id, f"the reminder for this cart update is in doubt ({out.entry.status}: "
                                   f"{out.entry.error_text or 'being sent by another run'}); not sent again "
                                   "(wch-bridge messages list --status unknown)")
    if out.status == "skipped":
        return _skip(job, cart_id, f"the reminder for this cart update was not sent earlier "
                                   f"({out.entry.status}: {out.entry.error_text}); not sent again")
    raise PermanentError(f"cart #{cart.id}: reminder to {who} not sent: {out.error}")
