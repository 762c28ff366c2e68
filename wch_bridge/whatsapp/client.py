"""``WhatsAppClient``: sends messages and catalog batches through the shared ``ApiGate``, retrying ``retry`` /
``throttle`` errors inside one call and raising ``ApiError`` for everything else."""

from __future__ import annotations

import logging
import random
import re
import threading
from typing import Any

import requests

from wch_bridge.api_gate import ApiGate
from wch_bridge.errors import ApiError, ConfigError
from wch_bridge.retry import backoff_delay
from wch_bridge.whatsapp.classify import (
    FIX,
    HALT,
    MALFORMED,
    PAIR,
    PAIR_RETRY_SECONDS,
    RETRY,
    TEMPLATE_DISABLED_CODE,
    TEMPLATE_PAUSE_SECONDS,
    TEMPLATE_PAUSED_CODE,
    THROTTLE,
    UNKNOWN,
    classify,
    normalize_phone,
)
from wch_bridge.whatsapp.results import BatchResult, BatchStatus, SendGuard, SendResult
from wch_bridge.whatsapp.wire import (
    _CODE_PREFIX,
    _PATH_ID,
    _VERSION,
    BATCH_MAX,
    TEXT_MAX,
    _as_int,
    _before_request_written,
    _retry_after,
    _Secret,
)

log = logging.getLogger("wch_bridge.whatsapp")


class WhatsAppClient:
    """Cloud API (messages) + Catalog API (items_batch) client. Thread-safe; share one per worker."""

    def __init__(
        self,
        *,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        phone_number_id: str,
        catalog_id: str | None = None,
        token: str,
        timeout: float = 30.0,
        gate: ApiGate | None = None,
        max_attempts: int = 3,
        session: requests.Session | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if not token or not str(token).strip():
            raise ConfigError("WhatsApp access token is empty")
        if not _VERSION.match(api_version or ""):
            raise ConfigError(f"WhatsApp api_version must look like v21.0, got {api_version!r}")
        if not phone_number_id or not _PATH_ID.match(str(phone_number_id)):
            raise ConfigError("WhatsApp phone_number_id is empty or not a plain id")
        if catalog_id is not None and not _PATH_ID.match(str(catalog_id)):
            raise ConfigError("WhatsApp catalog_id is not a plain id")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.phone_number_id = str(phone_number_id)
        self.catalog_id = str(catalog_id) if catalog_id is not None else None
        self.timeout = timeout
        self.gate = gate if gate is not None else ApiGate()
        self.catalog_gate = self.gate.child()  # catalog calls: their own halt and pauses
        self._disabled_templates: dict[str, ApiError] = {}
        self._templates_lock = threading.Lock()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng
        self._token = _Secret(str(token).strip())
        self._session = session
        self._local = threading.local()
        self._own_sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"WhatsAppClient(base_url={self.base_url!r}, api_version={self.api_version!r}, "
            f"phone_number_id={self.phone_number_id!r}, catalog_id={self.catalog_id!r}, token='***')"
        )

    def close(self) -> None:
        """Close the HTTP sessions this client opened (not one passed in)."""
        with self._sessions_lock:
            sessions, self._own_sessions = self._own_sessions, []
        for s in sessions:
            s.close()

    # -- messages -------------------------------------------------------------------------------------------
    def send_text(self, to: str, body: str, preview_url: bool = False) -> SendResult:
        if not isinstance(body, str) or not body.strip():
            raise ApiError("text message body is empty", category=FIX)
        if len(body) > TEXT_MAX:
            raise ApiError(f"text message body is {len(body)} characters (limit {TEXT_MAX})", category=FIX)
        return self.send_message(
            {"to": to, "type": "text", "text": {"preview_url": bool(preview_url), "body": body}}
        )

    def send_template(
        self, to: str, name: str, language: str = "en_US", components: list[dict[str, Any]] | None = None
    ) -> SendResult:
        if not isinstance(name, str) or not name.strip():
            raise ApiError("template name is empty", category=FIX)
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return self.send_message({"to": to, "type": "template", "template": template})

    def send_message(self, payload: dict[str, Any], *, guard: SendGuard | None = None) -> SendResult:
        """Send any Cloud API message body; ``messaging_product``/``recipient_type`` are filled in, ``to``
        is normalized to E.164 (a bad number raises ``recipient`` before any HTTP call). ``guard`` (the ledger's
        row) is told right before each HTTP attempt is written and when a failed attempt will be retried.

        Only failures before the request was written (connect timeout, connection refused) and definite answers
        (5xx, throttling) are retried; a failure after the request was written (read timeout, connection reset
        while waiting for the answer) raises ``unknown``: the message may have been delivered."""
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        body["to"] = normalize_phone(payload.get("to"))
        template = body.get("template") if body.get("type") == "template" else None
        name = str(template.get("name") or "") if isinstance(template, dict) else ""
        with self._templates_lock:
            disabled = self._disabled_templates.get(name) if name else None
        if disabled is not None:
            raise ApiError(
                f"template {name} is disabled (seen earlier in this run): {disabled}",
                code=TEMPLATE_DISABLED_CODE,
                http_status=disabled.http_status,
                category=FIX,
            )
        try:
            data = self._call(
                "POST", f"{self.phone_number_id}/messages", body, what="send message", guard=guard
            )
        except ApiError as err:
            if name and err.code == TEMPLATE_DISABLED_CODE:
                with self._templates_lock:
                    self._disabled_templates.setdefault(name, err)
            raise
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        message_id = first.get("id") if isinstance(first, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise ApiError(
                "WhatsApp API returned 200 without messages[0].id", category=MALFORMED, http_status=200
            )
        contacts = data.get("contacts")
        contact = contacts[0] if isinstance(contacts, list) and contacts else None
        wa_id = contact.get("wa_id") if isinstance(contact, dict) else None
        return SendResult(message_id=message_id, wa_id=wa_id if isinstance(wa_id, str) else None)

    # -- catalog --------------------------------------------------------------------------------------------
    def _catalog(self) -> str:
        if not self.catalog_id:
            raise ConfigError("WhatsApp catalog_id is not configured")
        return self.catalog_id

    def catalog_items_batch(
        self, requests: list[dict[str, Any]], item_type: str = "PRODUCT_ITEM", allow_upsert: bool = True
    ) -> BatchResult:
        """``POST /{v}/{catalog_id}/items_batch`` (at most 5,000 requests per call)."""
        catalog = self._catalog()
        if not requests:
            raise ApiError("catalog batch has no requests", category=FIX)
        if len(requests) > BATCH_MAX:
            raise ApiError(f"catalog batch has {len(requests)} requests (limit {BATCH_MAX})", category=FIX)
        body = {"item_type": item_type, "allow_upsert": bool(allow_upsert), "requests": list(requests)}
        data = self._call("POST", f"{catalog}/items_batch", body, what="catalog batch", token=False)
        handles = data.get("handles")
        status = data.get("validation_status", [])
        if not isinstance(handles, list) or not isinstance(status, list):
            raise ApiError(
                "WhatsApp catalog API returned no handles list", category=MALFORMED, http_status=200
            )
        return BatchResult(
            handles=[str(h) for h in handles], validation_status=[s for s in status if isinstance(s, dict)]
        )

    def check_batch_status(self, handle: str) -> BatchStatus:
        """``GET /{v}/{catalog_id}/check_batch_request_status?handle=``."""
        catalog = self._catalog()
        data = self._call(
            "GET",
            f"{catalog}/check_batch_request_status",
            None,
            params={"handle": handle},
            what="batch status",
            token=False,
        )
        rows = data.get("data")
        row = rows[0] if isinstance(rows, list) and rows else None
        if not isinstance(row, dict) or not isinstance(row.get("status"), str):
            raise ApiError(
                "WhatsApp catalog API returned no batch status", category=MALFORMED, http_status=200
            )
        return BatchStatus(
            handle=str(row.get("handle", handle)),
            status=row["status"],
            errors_total_count=_as_int(row.get("errors_total_count")) or 0,
            errors=[e for e in row.get("errors") or [] if isinstance(e, dict)],
            warnings=[w for w in row.get("warnings") or [] if isinstance(w, dict)],
        )

    # -- transport ------------------------------------------------------------------------------------------
    def _http(self) -> requests.Session:
        if self._session is not None:
            return self._session
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
            with self._sessions_lock:
                self._own_sessions.append(session)
        return session

    def _scrub(self, text: object, limit: int = 500) -> str:
        out = str(text)
        secret = self._token.reveal()
        if secret:
            out = out.replace(secret, "***")
        out = re.sub(r"(?i)(bearer\s+)[^\s\"',;]+", r"\1***", out)
        return out if len(out) <= limit else out[:limit] + "..."

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        params: dict[str, str] | None = None,
        what: str,
        token: bool = True,
        guard: SendGuard | None = None,
    ) -> dict[str, Any]:
        """One logical call: up to ``max_attempts`` HTTP attempts for ``retry``/``throttle`` errors. Message sends
        (``token``) go through ``gate``, catalog calls through ``catalog_gate``: a halt or pause applies to its own
        kind of call only."""
        url = f"{self.base_url}/{self.api_version}/{path}"
        gate = self.gate if token else self.catalog_gate
        for attempt in range(1, self.max_attempts + 1):
            gate.acquire(token=token)
            if guard is not None:
                guard.on_wire()  # the last step before the request is written (nothing may wait after it)
            outcome = self._attempt(method, url, body, params, what)
            if isinstance(outcome, dict):
                return outcome
            err = outcome
            last = attempt >= self.max_attempts
            wait: float | None = None
            if err.category == HALT:
                gate.halt(str(err), code=err.code)
                raise err
            if err.category == THROTTLE and err.code == TEMPLATE_PAUSED_CODE:
                raise err  # holds only this template: no shared pause, no quick retry
            if err.category == THROTTLE:
                pause = err.retry_after
                if pause is None:
                    pause = backoff_delay(attempt, self.backoff_base, self.backoff_cap, self._rng)
                gate.pause_for(pause, str(err))
                if pause > self.backoff_cap:
                    raise err  # too long to wait inside one call: let the job reschedule
            elif err.category == RETRY:
                wait = err.retry_after
                if wait is None:
                    wait = backoff_delay(attempt, self.backoff_base, self.backoff_cap, self._rng)
                if wait > self.backoff_cap:
                    raise err
            else:
                raise err
            if last:
                raise err
            if guard is not None:
                guard.off_wire(err)  # not sent: sendable again while this thread waits
            log.warning("%s; retrying (attempt %d/%d)", err, attempt, self.max_attempts)
            if wait is not None:
                gate.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self, method: str, url: str, body: dict[str, Any] | None, params: dict[str, str] | None, what: str
    ) -> dict[str, Any] | ApiError:
        headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json"}
        try:
            resp = self._http().request(
                method, url, json=body, params=params, headers=headers, timeout=self.timeout
            )
        except requests.ConnectTimeout as exc:  # never reached the server: safe to retry
            return ApiError(
                f"WhatsApp API {what} timed out connecting after {self.timeout:g} s",
                category=RETRY,
                details=self._scrub(exc),
            )
        except requests.Timeout as exc:
            # The request was sent; WhatsApp may have accepted it. Re-sending a message could deliver it twice.
            sends_message = method == "POST" and url.rstrip("/").endswith("/messages")
            return ApiError(
                f"WhatsApp API {what} timed out after {self.timeout:g} s"
                + (
                    " waiting for the answer; the message may have been delivered, so it is not re-sent"
                    if sends_message
                    else ""
                ),
                category=UNKNOWN if sends_message else RETRY,
                details=self._scrub(exc),
            )
        except requests.RequestException as exc:
            sends_message = method == "POST" and url.rstrip("/").endswith("/messages")
            if sends_message and not _before_request_written(exc):
                return ApiError(
                    f"WhatsApp API {what} failed after the request was sent: connection error "
                    f"({type(exc).__name__}); the message may have been delivered, so it is not re-sent",
                    category=UNKNOWN,
                    details=self._scrub(exc),
                )
            return ApiError(
                f"WhatsApp API {what} failed: connection error ({type(exc).__name__})",
                category=RETRY,
                details=self._scrub(exc),
            )
        log.debug("WhatsApp API %s %s -> HTTP %s", method, url, resp.status_code)
        return self._parse(resp, what)

    def _parse(self, resp: requests.Response, what: str) -> dict[str, Any] | ApiError:
        status = resp.status_code
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            snippet = self._scrub(resp.text, limit=200)
            if status >= 500 or status == 429:
                category = classify(None, status)
            else:
                category = MALFORMED
            return ApiError(
                f"WhatsApp API {what} returned HTTP {status} with a body that is not a JSON object",
                http_status=status,
                category=category,
                retry_after=retry_after,
                details=snippet,
            )
        error = data.get("error")
        if error is None and status < 400:
            return data
        if not isinstance(error, dict):
            error = {}
        code = _as_int(error.get("code"))
        category = classify(code, status)
        title = _CODE_PREFIX.sub("", str(error.get("message") or "")).strip() or f"HTTP {status}"
        error_data = error.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        if category == PAIR and retry_after is None:
            retry_after = PAIR_RETRY_SECONDS
        if code == TEMPLATE_PAUSED_CODE and retry_after is None:
            retry_after = TEMPLATE_PAUSE_SECONDS
        label = code if code is not None else f"HTTP {status}"
        return ApiError(
            self._scrub(f"WhatsApp API error {label} ({category}): {title}"),
            code=code,
            http_status=status,
            category=category,
            retry_after=retry_after,
            details=self._scrub(details) if details is not None else None,
        )
