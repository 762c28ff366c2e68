"""``hooks.RETRY_MESSAGE`` ``{message_id}``: re-send a ledger row recorded as failed-retryable (``retry``).

Backoff between attempts is ``retry.message_retry_delay`` (60, 300, 900, 3600 s) up to
``retry.MESSAGE_MAX_ATTEMPTS`` sends in all; a retryable failure schedules the next ``hooks.RETRY_MESSAGE``
and this run ends ``complete``; attempts used up or a permanent error records the row ``failed`` for good and
the action ends ``failed`` with the reason. A row that is no longer waiting for a retry (sent, failed, being sent)
is left alone. After a send gets through: a broadcast row refreshes its campaign summary, an abandoned-cart row
sets the cart's ``reminder_sent_at``."""

from __future__ import annotations

from typing import Any

from wch_bridge import hooks
from wch_bridge import whatsapp as wa
from wch_bridge.errors import ApiError, PermanentError, ShutdownRequested
from wch_bridge.handlers.base import Job
from wch_bridge.handlers.broadcast import refresh_summary
from wch_bridge.handlers.carts import parse_cart_key
from wch_bridge.handlers.common import (
    RETRYABLE_CATEGORIES,
    LedgerGuard,
    NotOurs,
    int_arg,
    keyed_args,
    masked,
    need,
    release_on_db_outage,
)
from wch_bridge.handlers.inbox import record_sent
from wch_bridge.handlers.ports import LedgerRow
from wch_bridge.models import LedgerStatus, NewAction, Outcome
from wch_bridge.retry import MESSAGE_MAX_ATTEMPTS, failed_send_delay

HOOK = hooks.RETRY_MESSAGE


def _after_sent(job: Job, entry: Any, message_id: str) -> None:
    services = job.services
    order = parse_order_key(entry.key)
    record_sent(services, to=entry.recipient, kind=entry.kind, payload=entry.payload, message_id=message_id,
                order=order)
    if entry.campaign_id:
        refresh_summary(services, str(entry.campaign_id))
    cart = parse_cart_key(entry.key)
    if cart is not None:
        wp = need(services, "wp")
        wp.mark_reminder_sent(cart[0], services.site.local(services.clock.now()), cart[1])


def parse_order_key(key: str) -> tuple[int, str] | None:
    """``(order_id, "status_update")`` from an order message's ledger key ``order:{id}:{status}``."""
    parts = (key or "").split(":")
    return (int(parts[1]), "status_update") if len(parts) == 3 and parts[0] == "order" and parts[1].isdigit() else None


def _done(line: str) -> Outcome:
    return Outcome(message=line, log_lines=(line,))


@release_on_db_outage
def handle(job: Job) -> Outcome:
    args = keyed_args(job, HOOK)
    services = job.services
    ledger = need(services, "ledger")
    message_id = int_arg(args, "message_id", "Invalid message ID")
    entry = ledger.get_by_id(message_id)
    if entry is None:
        raise PermanentError(f"message #{message_id} is not in the message ledger")
    who = masked(entry.recipient)
    if entry.status == LedgerStatus.SENT:
        return _done(f"message #{message_id} to {who} was already sent ({entry.wa_message_id}); nothing to do")
    if entry.status != LedgerStatus.RETRY:
        return _done(f"message #{message_id} to {who} is '{entry.status}', not waiting for a retry; left alone")
    if entry.attempts >= MESSAGE_MAX_ATTEMPTS:
        reason = f"message #{message_id} to {who} failed for good after {entry.attempts} attempts"
        ledger.give_up(entry.key, f"{reason}: {entry.error_text or ''}".strip())
        raise PermanentError(f"{reason}: {entry.error_text}")
    client = need(services, "whatsapp")
    if not isinstance(entry.payload, dict) or not entry.payload.get("to"):
        ledger.mark_failed(entry.key, None, "stored payload is not a message body", retryable=False, before_send=True)
        raise PermanentError(f"message #{message_id}: the stored payload is not a WhatsApp message body")
    guard = LedgerGuard(ledger, entry.key, action_id=job.action.action_id, payload=None, back_to=LedgerStatus.RETRY)
    try:
        result = client.send_message(entry.payload, guard=guard)
    except NotOurs:
        return _done(f"message #{message_id} to {who} was taken by another run; left alone")
    except ShutdownRequested:
        raise  # the client raises it only while waiting: the row is still 'retry'
    except ApiError as err:
        return _send_failed(job, entry, guard, err)
    ledger.mark_sent(entry.key, result.message_id)
    _after_sent(job, entry, result.message_id)
    return _done(f"message #{message_id} to {who} sent on attempt {guard.started.attempts} ({result.message_id})")


def _send_failed(job: Job, entry: LedgerRow, guard: LedgerGuard, err: ApiError) -> Outcome:
    """The retry's send failed: hold it (sends halted), fail it for good, mark it in doubt, or schedule the next
    retry after :func:`~wch_bridge.retry.failed_send_delay`."""
    services, ledger, message_id = job.services, need(job.services, "ledger"), entry.id
    who = masked(entry.recipient)
    if err.category == wa.HALT:
        if guard.on:
            ledger.release(entry.key, str(err), to_status=LedgerStatus.RETRY, error_code=err.code)
        else:
            ledger.note_held(entry.key, str(err), err.code)
        raise PermanentError(f"{err}; message #{message_id} stays waiting for a retry: run this action again "
                             "once fixed") from None
    if not guard.on:  # refused before any request (a bad number, an invalid body): failed for good
        ledger.mark_failed(entry.key, err.code, str(err), False, before_send=True)
        if entry.campaign_id:
            refresh_summary(services, str(entry.campaign_id))
        raise PermanentError(f"message #{message_id} to {who} not sent: {err}") from None
    if err.category == wa.UNKNOWN:
        ledger.mark_unknown(entry.key, str(err))
        if entry.campaign_id:
            refresh_summary(services, str(entry.campaign_id))
        raise PermanentError(f"message #{message_id} to {who} is in doubt: {err}") from None
    started = guard.started
    retryable = err.category in RETRYABLE_CATEGORIES
    ledger.mark_failed(entry.key, err.code, str(err), retryable)
    delay = failed_send_delay(started.attempts, err.retry_after) if retryable else None
    if delay is None:
        if retryable:
            ledger.give_up(entry.key, f"gave up after {started.attempts} attempts: {err}")
        if entry.campaign_id:
            refresh_summary(services, str(entry.campaign_id))
        raise PermanentError(f"message #{message_id} to {who} failed for good after {started.attempts} "
                             f"attempt(s): {err}") from None
    line = f"message #{message_id} to {who}: attempt {started.attempts} failed: {err}"
    return Outcome(message=line, log_lines=(line,), follow_ups=(
        NewAction(HOOK, {"message_id": message_id}, delay_seconds=delay,
                  purpose=f"retry {started.attempts + 1}/{MESSAGE_MAX_ATTEMPTS}"),))
