"""Helpers every ``wch`` handler uses: reading keyed args, reaching the services, phone numbers, plain text, and
:func:`send_once` (one outbound WhatsApp message through the ledger: never sent twice, outcome recorded)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from wch_bridge import phones
from wch_bridge import whatsapp as wa
from wch_bridge.errors import ApiError, PermanentError, ShutdownRequested, TransientStoreError
from wch_bridge.handlers.base import Handler, Job, Services
from wch_bridge.masking import mask_phone

if TYPE_CHECKING:
    from wch_bridge.handlers.ports import LedgerPort, LedgerRow, WhatsAppPort, WordPressPort

#: API error categories a later attempt can fix (reference C.5): back-off errors, throttling, pair limit.
RETRYABLE_CATEGORIES = frozenset({wa.RETRY, wa.THROTTLE, wa.PAIR})

#: Country calling codes for turning a national billing phone into E.164 (WooCommerce stores free text).
CALLING_CODES = {
    "US": "1", "CA": "1", "GB": "44", "IE": "353", "FR": "33", "DE": "49", "ES": "34", "IT": "39", "PT": "351",
    "NL": "31", "BE": "32", "CH": "41", "AT": "43", "SE": "46", "NO": "47", "DK": "45", "FI": "358", "PL": "48",
    "IN": "91", "PK": "92", "BD": "880", "LK": "94", "AE": "971", "SA": "966", "EG": "20", "NG": "234",
    "KE": "254", "ZA": "27", "GH": "233", "MA": "212", "TR": "90", "IL": "972", "BR": "55", "MX": "52",
    "AR": "54", "CO": "57", "CL": "56", "PE": "51", "AU": "61", "NZ": "64", "SG": "65", "MY": "60", "ID": "62",
    "PH": "63", "TH": "66", "VN": "84", "JP": "81", "KR": "82", "CN": "86", "HK": "852",
}


# ---------------------------------------------------------------------------------------------- args / services


def keyed_args(job: Job, hook: str) -> dict[str, Any]:
    """The keyed object the producers store (v2 payloads are already unwrapped by the worker)."""
    if isinstance(job.args, dict):
        return job.args
    if job.args == []:
        return {}
    raise PermanentError(f"{hook}: args must be a JSON object with named keys, got a list of {len(job.args)} item(s)")


def int_arg(args: dict[str, Any], key: str, what: str) -> int:
    value = args.get(key)
    if isinstance(value, bool) or value in (None, ""):
        raise PermanentError(f"{what}: '{key}' is missing")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise PermanentError(f"{what}: '{key}' must be a positive integer, got {str(value)[:40]!r}") from None
    if number <= 0:
        raise PermanentError(f"{what}: '{key}' must be a positive integer, got {number}")
    return number


@overload
def need(services: Services, name: Literal["wp"]) -> WordPressPort: ...
@overload
def need(services: Services, name: Literal["ledger"]) -> LedgerPort: ...
@overload
def need(services: Services, name: Literal["whatsapp"]) -> WhatsAppPort: ...


def need(services: Services, name: str) -> Any:
    """A collaborator from ``Services`` (``wp``, ``ledger``, ``whatsapp``), or a clear permanent error."""
    value = getattr(services, name, None)
    if value is None:
        hints = {
            "whatsapp": "WhatsApp is not configured (phone number id and access token: WCH_BRIDGE_WHATSAPP_TOKEN, "
                        "--whatsapp-phone-number-id or the plugin's wch_settings)",
            "wp": "WordPress data access is not configured",
            "ledger": "the message ledger is not configured",
        }
        raise PermanentError(hints.get(name, f"service {name} is not configured"))
    return value


def setting(services: Services, name: str, default: Any = None) -> Any:
    value = getattr(services.settings, name, None) if services.settings is not None else None
    return default if value is None else value


def release_on_db_outage(fn: Handler) -> Handler:
    """A lost database (deadlock retries exhausted, connection gone) in the middle of a run is not a failure of
    the action: it goes back to ``pending`` (via ``ShutdownRequested``) and runs again once the database is back;
    the ledger makes the re-run skip what was already sent."""

    def wrapper(job: Job) -> Any:
        try:
            return fn(job)
        except TransientStoreError as exc:
            raise ShutdownRequested(f"database unavailable during the run ({exc}); it will run again") from exc

    wrapper.__name__ = getattr(fn, "__name__", "handler")
    wrapper.__doc__ = fn.__doc__
    return wrapper


# ---------------------------------------------------------------------------------------------- text


_TAGS = re.compile(r"<[^>]*>")


def plain_text(value: str, limit: int | None = None) -> str:
    """HTML -> one tidy plain-text string (tags dropped, entities decoded, whitespace collapsed)."""
    text = " ".join(html.unescape(_TAGS.sub(" ", value or "")).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def e164(phone: str, country: str = "") -> str:
    """A WooCommerce billing phone (free text) as E.164, using the billing country for national numbers.

    Raises ``ApiError(category=recipient)`` (no digits echoed) when it cannot be a valid number."""
    compact = phones.compact(phone or "")
    if compact.startswith("+") or compact.startswith("00"):
        return wa.normalize_phone(compact)
    digits = re.sub(r"[^0-9]", "", compact)
    code = CALLING_CODES.get((country or "").strip().upper())
    if code and digits:
        national = digits.lstrip("0")
        if not (digits.startswith(code) and len(digits) > len(code) + 6):
            digits = code + national
    return wa.normalize_phone("+" + digits)


def masked(phone: str) -> str:
    return mask_phone(phone) if phone else "(none)"


# ---------------------------------------------------------------------------------------------- send once


@dataclass(frozen=True)
class SendOutcome:
    """What :func:`send_once` did. ``status``: ``sent``, ``already_sent``, ``retry`` (failed, retryable),
    ``failed`` (for good), ``unknown`` (the request left, no answer: in doubt, not re-sent), ``skipped`` (failed
    before: not re-sent), ``in_doubt`` (``unknown`` before, or ``sending`` in another run: not re-sent),
    ``halted`` (sends are halted; the message was not sent and stays queued)."""

    status: str
    entry: LedgerRow  # store.ledger.LedgerEntry
    error: ApiError | None = None
    message_id: str | None = None
    kind: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status in ("sent", "already_sent")

    @property
    def doubtful(self) -> bool:
        """The message may or may not have reached WhatsApp (never re-sent automatically)."""
        return self.status in ("unknown", "in_doubt")


class NotOurs(Exception):  # noqa: N818 - control flow: another run took the row between claim and send
    pass


class LedgerGuard:
    """The ledger row of one message, ``sending`` only while its request is on the wire (``whatsapp.SendGuard``).

    ``on_wire()`` (called by the client after the send slot, pauses and back-off) moves it ``pending``/``retry``
    -> ``sending``: one short guarded UPDATE is all that stands between it and the socket write. ``off_wire()``
    (a definite "not sent" that will be retried after a wait) moves it back, so a worker killed or stopped while
    waiting leaves it sendable. Calling ``on_wire()`` again while on the wire does nothing (a handler may switch
    to a template after a first answer)."""

    def __init__(self, ledger: Any, key: str, *, action_id: int, payload: Any, back_to: str) -> None:
        self.ledger, self.key, self.action_id, self.payload, self.back_to = ledger, key, action_id, payload, back_to
        self.started: Any = None  # the row as begin_send left it
        self.on = False

    def on_wire(self) -> None:
        if self.on:
            return
        started = self.ledger.begin_send(self.key, action_id=self.action_id, payload=self.payload)
        if started is None:
            raise NotOurs(self.key)
        self.started, self.on = started, True

    def off_wire(self, err: ApiError) -> None:
        if self.on:
            self.ledger.release(self.key, f"not sent yet, trying again: {err}", to_status=self.back_to)
            self.on = False


Deliver = Callable[[LedgerGuard], tuple[Any, str, dict[str, Any]]]  # -> (whatsapp.SendResult, kind, payload)


def send_once(
    services: Services,
    key: str,
    *,
    recipient: str,
    kind: str,
    payload: dict[str, Any],
    deliver: Deliver,
    job: Job,
    campaign_id: str | None = None,
) -> SendOutcome:
    """Claim ``key`` in the ledger and send at most once. ``deliver(guard)`` does the HTTP call(s) through
    ``client.send_message(body, guard=guard)`` (it may switch to a template) and returns
    ``(SendResult, kind, payload)``; an ``ApiError`` it raises is recorded on the row. The row is ``sending``
    only while a request is on the wire (see :class:`LedgerGuard`)."""
    ledger = need(services, "ledger")
    entry = ledger.claim(key, recipient=recipient, kind=kind, payload=payload, action_id=job.action.action_id,
                         hook=job.action.hook, campaign_id=campaign_id)
    if entry.status == "sent":
        return SendOutcome("already_sent", entry, message_id=entry.wa_message_id, kind=entry.kind)
    if entry.status == "failed":
        return SendOutcome("skipped", entry)
    if entry.status in ("unknown", "sending"):
        return SendOutcome("in_doubt", entry)
    guard = LedgerGuard(ledger, key, action_id=job.action.action_id, payload=payload, back_to=entry.status)
    try:
        result, sent_kind, sent_payload = deliver(guard)
    except NotOurs:
        now = ledger.get(key) or entry
        if now.status == "sent":
            return SendOutcome("already_sent", now, message_id=now.wa_message_id, kind=now.kind)
        return SendOutcome("in_doubt" if now.status in ("sending", "unknown") else "skipped", now)
    except ShutdownRequested:
        if guard.on:  # pragma: no cover - the client raises it only while waiting (never on the wire)
            ledger.release(key, "worker stopping before the send", to_status=guard.back_to)
        raise
    except ApiError as err:
        if err.category == wa.HALT:  # the code stays on the row: `status` and the report show sends as paused
            if guard.on:
                ledger.release(key, str(err), to_status=guard.back_to, error_code=err.code)
            else:
                ledger.note_held(key, str(err), err.code)
            return SendOutcome("halted", ledger.get(key) or entry, error=err)
        if err.category == wa.UNKNOWN and guard.on:  # sent, no answer: unknown, never re-sent automatically
            ledger.mark_unknown(key, str(err))
            return SendOutcome("unknown", ledger.get(key) or guard.started, error=err)
        retryable = err.category in RETRYABLE_CATEGORIES
        ledger.mark_failed(key, err.code, str(err), retryable, before_send=not guard.on)
        return SendOutcome("retry" if retryable else "failed", ledger.get(key) or entry, error=err)
    if ledger.mark_sent(key, result.message_id, kind=sent_kind, payload=sent_payload):
        entry = guard.started.after_sent(result.message_id, kind=sent_kind, payload=sent_payload)
    else:
        entry = ledger.get(key) or guard.started
    return SendOutcome("sent", entry, message_id=result.message_id, kind=sent_kind)


def message_body(to: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """A Cloud API message body without the envelope fields the client adds (``to``, ``type``, ``<type>``)."""
    return {"to": to, "type": kind, kind: content}


def template_content(name: str, language: str, body_params: list[str] | None = None,
                     components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    comps = list(components or [])
    if body_params:
        comps.append({"type": "body", "parameters": [{"type": "text", "text": str(p)} for p in body_params]})
    if comps:
        template["components"] = comps
    return template
