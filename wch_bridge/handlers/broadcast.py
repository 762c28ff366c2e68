"""``hooks.BROADCAST_BATCH`` ``{batch: [phones], batch_num, campaign_id, message}`` (wch-plugin.md 2.2).

``message`` is a text, or ``{template_name, template_data, variables}`` (the admin producer's shape,
docs/plugin-contracts.md): the send request is built per recipient as the plugin builds it (``templates.py``:
lower-case components with parameters from the definition's ``{{n}}``, ``customer_name`` from the recipient's
``wch_customer_profiles.name``). A recipient whose profile has ``opt_in_marketing = 0`` when the batch runs is
not sent to (recorded failed in the ledger with that reason); a phone without a profile is sent to.

Every recipient goes through the ledger under ``broadcast:{campaign_id}:{E.164 phone}``: a re-run of the batch
sends nothing that was sent. Sends run on a small thread pool (bounded by the messages-per-second limit, which the
shared ``ApiGate`` enforces along with 130429 back-off); the worker's stop request is checked between recipients.
A retryable failure gets a ``hooks.RETRY_MESSAGE`` action ``{message_id: <ledger id>}``; a permanent one is
recorded with its error code. The batch result ``wch_broadcast_result_{cid}_{n}`` and the campaign summary
``wch_broadcast_summary_{cid}`` (both 1 h) are written as the plugin writes them; the summary is updated
atomically and keeps ``batch_results`` per batch number, so a re-run or two batches at once never lose a batch;
its totals are counted from the ledger (``total_sent``, ``total_failed``, plus ``total_retrying`` and
``total_unknown``: messages in doubt, ``sending``/``unknown`` rows that may or may not have reached WhatsApp).
A recipient in doubt (its row ``sending`` in another run or left so by a killed one, or ``unknown``) is never
re-sent automatically and is not counted as failed: the batch logs "N in doubt"."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wch_bridge import hooks
from wch_bridge import whatsapp as wa
from wch_bridge.errors import ApiError, PermanentError, ShutdownRequested
from wch_bridge.handlers import templates
from wch_bridge.handlers.base import Job, Services
from wch_bridge.handlers.common import (
    LedgerGuard,
    SendOutcome,
    keyed_args,
    masked,
    message_body,
    need,
    release_on_db_outage,
    send_once,
    setting,
)
from wch_bridge.handlers.inbox import record_outcome
from wch_bridge.handlers.ports import WhatsAppPort
from wch_bridge.models import NewAction, Outcome
from wch_bridge.retry import failed_send_delay
from wch_bridge.timeutil import fmt

HOOK = hooks.BROADCAST_BATCH
OPTED_OUT = ("not sent: the customer no longer accepts marketing messages (wch_customer_profiles.opt_in_marketing = 0 "
             "at send time)")
RETRY_HOOK = hooks.BY_NAME[HOOK].retry_hook or hooks.RETRY_MESSAGE
TTL = 3600
MAX_THREADS = 16
PROGRESS_EVERY = 5.0  # real seconds between two progress lines of a running batch


Content = Callable[[str | None], dict[str, Any]]  # recipient's profile name -> Cloud API content


def build_message(message: Any, language: str) -> tuple[str, Content, bool]:
    """``(kind, content for a recipient's name, whether names are needed)`` from the plugin's ``message``.

    A text (or ``{text}``/``{body}``) sends that text; ``{template_name, template_data, variables}`` sends the
    template built as the plugin's head builds it (``handlers/templates.py``)."""
    if isinstance(message, str) and message.strip():
        body = {"preview_url": False, "body": message}
        return "text", lambda _name: body, False
    if isinstance(message, dict):
        name = message.get("template_name")
        if isinstance(name, str) and name.strip():
            data = message.get("template_data") if isinstance(message.get("template_data"), dict) else {}
            variables = message.get("variables")
            tpl = name.strip()
            return ("template", lambda who: templates.template_request(tpl, data, variables, who, language),
                    templates.needs_names(data, variables))
        text = message.get("text") or message.get("body")
        if isinstance(text, str) and text.strip():
            body = {"preview_url": False, "body": text}
            return "text", lambda _name: body, False
    raise PermanentError("Invalid broadcast batch parameters: message must be a text or {template_name, ...}")


def summary_updater(services: Services, campaign_id: str, batch_num: int, batch: dict[str, int] | None) -> Any:
    """The pure-ish update function for ``wch_broadcast_summary_{cid}`` (totals re-counted from the ledger)."""
    ledger = need(services, "ledger")
    now_local = fmt(services.site.local(services.clock.now()))

    def update(current: Any, conn: Any) -> dict[str, Any]:
        summary = dict(current) if isinstance(current, dict) else {
            "campaign_id": campaign_id, "total_sent": 0, "total_failed": 0, "batches": 0, "started_at": now_local,
        }
        raw = summary.get("batch_results")
        items = enumerate(raw) if isinstance(raw, list) else (raw.items() if isinstance(raw, dict) else ())
        results = {int(k): v for k, v in items if str(k).lstrip("-").isdigit()}
        if batch is not None:
            results[batch_num] = dict(batch)
        counts = ledger.campaign_counts(campaign_id, conn)  # inside the summary's lock: never a stale count
        summary.update({
            "total_sent": counts.get("sent", 0),
            "total_failed": counts.get("failed", 0),
            "total_unknown": counts.get("unknown", 0) + counts.get("sending", 0),  # in doubt: maybe delivered
            "total_retrying": counts.get("retry", 0),
            "batches": len(results),
            "batch_results": {k: results[k] for k in sorted(results)},
            "last_updated": now_local,
        })
        return summary

    return update


def refresh_summary(services: Services, campaign_id: str, batch_num: int = 0,
                    batch: dict[str, int] | None = None) -> dict[str, Any]:
    wp = need(services, "wp")
    return wp.update_transient(f"wch_broadcast_summary_{campaign_id}",
                               summary_updater(services, campaign_id, batch_num, batch), TTL, pass_conn=True)


def _batch_args(job: Job) -> tuple[list[Any], str, Any, int]:
    """``(batch, campaign id, message, batch_num)`` of a broadcast batch action, or a permanent error."""
    args = keyed_args(job, HOOK)
    batch = args.get("batch")
    campaign_id = args.get("campaign_id")
    message = args.get("message")
    try:
        batch_num = int(str(args.get("batch_num") or 0))
    except ValueError:
        raise PermanentError("Invalid broadcast batch parameters: batch_num must be an integer") from None
    if not isinstance(batch, list) or not batch:
        raise PermanentError("Invalid broadcast batch parameters: batch must be a non-empty list of phone numbers")
    if campaign_id in (None, "", 0, False):
        raise PermanentError("Invalid broadcast batch parameters: campaign_id is missing")
    if not message:
        raise PermanentError("Invalid broadcast batch parameters: message is empty")
    return batch, str(campaign_id), message, batch_num


@release_on_db_outage
def handle(job: Job) -> Outcome:
    services = job.services
    batch, cid, message, batch_num = _batch_args(job)
    kind, content_for, needs_names = build_message(message, str(setting(services, "template_language", "en_US")))
    client = need(services, "whatsapp")
    wp = need(services, "wp")
    need(services, "ledger")
    # read at send time: names for the template, and opt_in_marketing re-checked (a customer who opted out after
    # the campaign was queued gets nothing; the ledger row says why)
    profiles = wp.customer_profiles([str(p).strip() for p in batch if p is not None])

    stop = threading.Event()  # a halt or the worker's stop request: no new recipients
    outcomes: list[tuple[str, SendOutcome | None, str]] = [("", None, "")] * len(batch)
    progress = _Progress(services, f"broadcast {cid} batch {batch_num}", outcomes)

    def one(index: int, raw: Any) -> None:
        outcomes[index] = _send_one(job, client, cid, raw, kind, content_for, profiles, stop)
        progress.step()

    mps = float(setting(services, "messages_per_second", 80.0))
    workers = max(1, min(len(batch), MAX_THREADS, math.ceil(mps)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wch-broadcast") as pool:
        for fut in [pool.submit(one, i, raw) for i, raw in enumerate(batch)]:
            fut.result()

    statuses = [o[0] for o in outcomes]
    if "stopped" in statuses:
        raise ShutdownRequested(
            f"worker is stopping: broadcast {cid} batch {batch_num} paused after "
            f"{sum(s in ('sent', 'already_sent') for s in statuses)} of {len(batch)} recipients; the re-run "
            "skips those already sent")
    return _finish(job, cid, batch_num, outcomes)


class _Progress:
    """A line every :data:`PROGRESS_EVERY` seconds while a batch runs: recipients done of the batch, sent so far."""

    def __init__(self, services: Services, what: str, outcomes: list[tuple[str, SendOutcome | None, str]]) -> None:
        self.services, self.what, self.outcomes = services, what, outcomes
        self.lock = threading.Lock()
        self.done = 0
        self.last = time.monotonic()

    def step(self) -> None:
        with self.lock:
            self.done += 1
            now = time.monotonic()
            if now - self.last < PROGRESS_EVERY or self.done >= len(self.outcomes):
                return
            self.last = now
            sent = sum(o[0] in ("sent", "already_sent") for o in self.outcomes)
            self.services.log.info("%s: %d of %d recipients done, %d sent", self.what, self.done,
                                   len(self.outcomes), sent)


def _send_one(job: Job, client: WhatsAppPort, cid: str, raw: Any, kind: str, content_for: Content,
              profiles: dict[str, Any], stop: threading.Event) -> tuple[str, SendOutcome | None, str]:
    """Send the campaign's message to one recipient of the batch, once (the ledger); ``stop`` is set on a halt or
    the worker's stop request. Returns ``(status, outcome, phone)`` for :func:`_finish`."""
    services = job.services
    phone = str(raw if raw is not None else "").strip()
    if stop.is_set():
        return ("not_attempted", None, phone)
    try:
        job.check_stop()
    except ShutdownRequested:
        stop.set()
        return ("stopped", None, phone)
    try:
        to = wa.normalize_phone(phone)
    except ApiError:
        to = phone
    profile = profiles.get(phone)
    body = message_body(to, kind, content_for(profile.name if profile is not None else None))
    opted_out = profile is not None and not profile.opt_in_marketing

    def deliver(guard: LedgerGuard) -> tuple[Any, str, dict[str, Any]]:
        if opted_out:
            raise ApiError(OPTED_OUT, category=wa.RECIPIENT)
        return client.send_message(body, guard=guard), kind, body

    try:
        out = send_once(services, f"broadcast:{cid}:{to or '(empty)'}", recipient=to or "(empty)", kind=kind,
                        payload=body, deliver=deliver, job=job, campaign_id=cid)
    except ShutdownRequested:  # the gate closed under us: the ledger row went back to where it was
        stop.set()
        return ("stopped", None, phone)
    if out.status == "halted":
        stop.set()
    record_outcome(services, out, to=to, fallback_kind=kind, fallback_payload=body)
    return (out.status, out, to)


def _finish(job: Job, cid: str, batch_num: int, outcomes: list[tuple[str, SendOutcome | None, str]]) -> Outcome:
    services = job.services
    wp = need(services, "wp")
    sent = failed = retrying = already = doubt = 0
    errors: list[dict[str, Any]] = []
    follow_ups: list[NewAction] = []
    halted: ApiError | None = None
    for status, out, phone in outcomes:
        if status in ("sent", "already_sent"):
            sent += 1
            already += status == "already_sent"
            continue
        if status == "halted" and out is not None:
            halted = halted or out.error
        if status == "not_attempted" or status == "halted":
            continue
        text = str(out.error) if out is not None and out.error is not None else (
            out.entry.error_text if out is not None and out.entry.error_text else status)
        if out is not None and out.doubtful:  # may have reached WhatsApp: in doubt, not failed, never re-sent
            doubt += 1
            if out.status == "in_doubt" and out.entry.status == "sending":
                text = "in doubt: being sent by another run (or that run stopped while its request was on the wire)"
            else:
                text = f"in doubt: {text}"
            errors.append({"recipient": phone, "error": text + " (wch-bridge messages list --status unknown)",
                           "code": None, "in_doubt": True})
            continue
        failed += 1
        if status == "retry" and out is not None:
            retrying += 1
            delay = failed_send_delay(out.entry.attempts, out.error.retry_after if out.error else None,
                                      used_up=60)
            follow_ups.append(NewAction(RETRY_HOOK, {"message_id": out.entry.id}, delay_seconds=delay,
                                        purpose=f"retry of message #{out.entry.id} to {masked(phone)}"))
            text += "; retry scheduled"
        code = None
        if out is not None:
            code = out.error.code if out.error is not None else out.entry.error_code
        errors.append({"recipient": phone, "error": text, "code": code})
    results: dict[str, Any] = {"sent": sent, "failed": failed, "errors": errors}
    counted = {"sent": sent, "failed": failed}
    if doubt:  # the plugin's shapes, plus the messages in doubt when there are any
        results["unknown"] = counted["unknown"] = doubt
    ts = wp.local_timestamp()
    wp.set_transient(f"wch_broadcast_result_{cid}_{batch_num}",
                     {"campaign_id": cid, "batch_num": batch_num, "results": results, "timestamp": ts}, TTL)
    refresh_summary(services, cid, batch_num, counted)
    line = (f"broadcast {cid} batch {batch_num}: {sent} sent ({already} already sent earlier), {failed} failed"
            + (f", {retrying} to retry" if retrying else "")
            + (f", {doubt} in doubt (may have been delivered; not re-sent: wch-bridge messages list "
               f"--campaign {cid} --status unknown)" if doubt else ""))
    services.log.info("%s", line)
    if halted is not None:
        not_sent = len(outcomes) - sent - failed - doubt
        raise PermanentError(f"{halted}; broadcast {cid} batch {batch_num}: {sent} sent, {not_sent} not attempted "
                             "(they stay queued in the ledger: run the action again once fixed)")
    return Outcome(message=line, log_lines=(line,), follow_ups=tuple(follow_ups))
