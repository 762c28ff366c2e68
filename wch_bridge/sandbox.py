"""A local fake of the WhatsApp Cloud API and the Catalog API (stdlib ``http.server``), for tests and the demo.

API routes (any ``/v<major>.<minor>/`` prefix; reference C.9):

* ``POST /{v}/{phone_number_id}/messages``: validates the body, answers the C.3 success shape (``wamid.`` ids)
  or a C.4 error body (bad token 190, window closed 131047, missing/invalid parameters 131008/131009/100...).
* ``POST /{v}/{catalog_id}/items_batch`` and legacy ``/batch``: ``handles`` + ``validation_status``.
* ``GET /{v}/{catalog_id}/check_batch_request_status?handle=``: ``finished`` (after ``batch_delay_ms``).

Control routes: ``GET /_sandbox/requests[?path_contains=]``, ``GET|POST /_sandbox/faults``,
``POST /_sandbox/reset``, ``GET|POST /_sandbox/config``, ``GET /_sandbox/catalog?catalog_id=``,
``GET /_sandbox/health``. The Authorization header is never recorded.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("wch_bridge.sandbox")

TEXT_MAX = 4096
BATCH_MAX = 5000
MESSAGE_TYPES = frozenset(
    {
        "text",
        "template",
        "interactive",
        "image",
        "document",
        "audio",
        "video",
        "sticker",
        "location",
        "contacts",
        "reaction",
    }
)
ITEMS_BATCH_REQUIRED = (
    "id",
    "title",
    "description",
    "availability",
    "condition",
    "price",
    "link",
    "image_link",
    "brand",
)
LEGACY_BATCH_REQUIRED = ("name", "description", "price", "currency", "url", "image_url")

TITLES: dict[int, str] = {
    0: "AuthException",
    1: "API Unknown",
    2: "API Service",
    3: "API Method",
    4: "Application request limit reached",
    10: "Permission denied",
    100: "Invalid parameter",
    190: "Access token has expired",
    200: "Permission error",
    368: "Temporarily blocked for policies violations",
    80007: "Rate limit issues",
    80014: "Too many calls to this catalog",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131016: "Service unavailable",
    131021: "Recipient cannot be sender",
    131026: "Message Undeliverable",
    131031: "Business Account locked",
    131042: "Business eligibility payment issue",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "Meta chose not to deliver",
    131050: "User has stopped marketing messages",
    131051: "Unsupported message type",
    131052: "Media download error",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131057: "Account in maintenance mode",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132005: "Translated text too long",
    132007: "Template format character policy violated",
    132012: "Parameter format does not match format in the created template",
    132015: "Template is paused",
    132016: "Template is disabled",
    132018: "Template parameter problem",
    133010: "Phone number not registered",
}
DETAILS: dict[int, str] = {
    131047: "Message failed to send because more than 24 hours have passed since the customer last replied "
    "to this number.",
    130429: "Message failed to send because there were too many messages sent from this phone number in a "
    "short period of time",
    190: "The access token is invalid or has expired.",
}


def http_status_for(code: int) -> int:
    """HTTP status the fake uses for a Graph error code (reference C.4)."""
    if code in (0, 190):
        return 401
    if code in (10, 368) or 200 <= code <= 299:
        return 403
    if code == 131000:
        return 500
    if code == 131016:
        return 503
    return 400


def error_body(code: int, message: str | None = None, details: str | None = None) -> dict[str, Any]:
    """A Graph error body exactly in the C.4 shape (no ``error_subcode``: absent since v16.0)."""
    title = message or TITLES.get(code, "An unknown error occurred")
    return {
        "error": {
            "message": f"(#{code}) {title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or DETAILS.get(code, title)},
            "fbtrace_id": "A" + secrets.token_urlsafe(16),
        }
    }


def _digits(value: object) -> str:
    return re.sub(r"\D", "", str(value or ""))


class _Reply(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, code: int, details: str | None = None, http_status: int | None = None) -> None:
        super().__init__(details or TITLES.get(code, ""))
        self.code, self.details, self.http_status = code, details, http_status


# ---------------------------------------------------------------------------------------------- faults

_RULE_KEYS = {
    "code",
    "http_status",
    "recipients",
    "paths",
    "times",
    "retry_after",
    "latency_ms",
    "body",
    "message",
    "details",
}


@dataclass
class FaultRule:
    """A scripted answer: first matching rule with ``times`` left wins (``None`` = unlimited)."""

    code: int | None = None
    http_status: int | None = None
    recipients: frozenset[str] = frozenset()
    paths: tuple[str, ...] = ()
    times: int | None = None
    retry_after: str | None = None
    latency_ms: float = 0.0
    body: str | None = None
    message: str | None = None
    details: str | None = None
    hits: int = field(default=0)

    @classmethod
    def from_dict(cls, raw: object) -> FaultRule:
        if not isinstance(raw, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")

        def opt_int(key: str, low: int | None = None) -> int | None:
            value = raw.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
                raise ValueError(
                    f"fault rule {key} must be an integer" + (f" >= {low}" if low is not None else "")
                )
            return value

        def str_list(key: str) -> list[str]:
            value = raw.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
                raise ValueError(f"fault rule {key} must be a list of strings")
            return [str(v) for v in value]

        latency = raw.get("latency_ms") or 0
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise ValueError("fault rule latency_ms must be a number >= 0")
        for key in ("body", "message", "details"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise ValueError(f"fault rule {key} must be a string")
        rule = cls(
            code=opt_int("code", 0),
            http_status=opt_int("http_status", 100),
            times=opt_int("times", 1),
            recipients=frozenset(_digits(r) for r in str_list("recipients")),
            paths=tuple(str_list("paths")),
            retry_after=None if raw.get("retry_after") is None else str(raw["retry_after"]),
            latency_ms=float(latency),
            body=raw.get("body"),
            message=raw.get("message"),
            details=raw.get("details"),
        )
        if rule.http_status is not None and rule.http_status > 599:
            raise ValueError("fault rule http_status must be 100-599")
        if rule.code is None and rule.body is None and not rule.latency_ms:
            raise ValueError("a fault rule needs code, body or latency_ms")
        return rule

    def matches(self, path: str, recipient: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.paths and not any(p in path for p in self.paths):
            return False
        return not self.recipients or recipient in self.recipients

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in sorted(_RULE_KEYS)}
        out["recipients"] = sorted(self.recipients)
        out["paths"] = list(self.paths)
        out["hits"] = self.hits
        return out


# ---------------------------------------------------------------------------------------------- state


class _State:
    """Everything the handler threads share; every access under ``lock``."""

    def __init__(self, latency_ms: float, token: str | None) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.token = token
        self.latency_ms = float(latency_ms)
        self.outside_window: set[str] = set()
        self.templates: dict[str, int | None] | None = None
        self.mps_limit: float | None = None
        self.batch_delay_ms = 0.0
        self.requests: list[dict[str, Any]] = []
        self.rules: list[FaultRule] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.catalogs: dict[str, dict[str, dict[str, Any]]] = {}
        self.buckets: dict[str, tuple[float, float]] = {}
        self.counter = 0

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.rules.clear()
            self.batches.clear()
            self.catalogs.clear()
            self.buckets.clear()

    def config(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "outside_window": sorted(self.outside_window),
            "templates": self.templates,
            "mps_limit": self.mps_limit,
            "batch_delay_ms": self.batch_delay_ms,
            "token_required": self.token is not None,
        }

    def configure(self, raw: dict[str, Any]) -> dict[str, Any]:
        unknown = set(raw) - {"latency_ms", "outside_window", "templates", "mps_limit", "batch_delay_ms"}
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        with self.lock:
            for key in ("latency_ms", "batch_delay_ms"):
                if key in raw:
                    value = raw[key]
                    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                        raise ValueError(f"{key} must be a number >= 0")
                    setattr(self, key, float(value))
            if "mps_limit" in raw:
                value = raw["mps_limit"]
                if value is not None and (not isinstance(value, int | float) or value <= 0):
                    raise ValueError("mps_limit must be a positive number or null")
                self.mps_limit = None if value is None else float(value)
                self.buckets.clear()
            if "outside_window" in raw:
                value = raw["outside_window"]
                if not isinstance(value, list):
                    raise ValueError("outside_window must be a list of phone numbers")
                self.outside_window = {_digits(v) for v in value if _digits(v)}
            if "templates" in raw:
                value = raw["templates"]
                if value is not None and not isinstance(value, dict):
                    raise ValueError("templates must be an object {name: body parameter count or null}")
                self.templates = None if value is None else dict(value)
            return self.config()

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(entry)
        return entry

    def take_fault(self, path: str, recipient: str) -> FaultRule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(path, recipient):
                    rule.hits += 1
                    return copy.copy(rule)
        return None

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def over_rate(self, phone_number_id: str) -> bool:
        """Token bucket per phone number (``mps_limit``/s, burst = one second's worth, at least 1)."""
        with self.lock:
            if self.mps_limit is None:
                return False
            now = time.monotonic()
            burst = max(1.0, self.mps_limit)
            tokens, last = self.buckets.get(phone_number_id, (burst, now))
            tokens = min(burst, tokens + (now - last) * self.mps_limit)
            if tokens < 1.0:
                self.buckets[phone_number_id] = (tokens, now)
                return True
            self.buckets[phone_number_id] = (tokens - 1.0, now)
            return False


# ---------------------------------------------------------------------------------------------- HTTP

_API = re.compile(r"^/v\d+\.\d+/([^/]+)/(messages|items_batch|batch|check_batch_request_status)/?$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | OSError):
            return  # the client went away (e.g. it timed out while we slept): nothing to tell anyone
        log.exception("sandbox: error while handling a request from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid the 40 ms ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("sandbox: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # -- plumbing ---------------------------------------------------------------------------------------
    def _send(
        self, status: int, payload: Any, headers: dict[str, str] | None = None, raw: bool = False
    ) -> None:
        data = (payload if isinstance(payload, str) else "").encode() if raw else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self, raw: bytes) -> Any:
        if not raw:
            return None
        text = raw.decode("utf-8", errors="replace")
        if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form: dict[str, Any] = {k: v[-1] for k, v in parse_qs(text).items()}
            for key in ("requests",):
                if isinstance(form.get(key), str):
                    try:
                        form[key] = json.loads(form[key])
                    except ValueError:
                        pass
            return form
        try:
            return json.loads(text)
        except ValueError:
            return text

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        body = self._body(raw)
        if split.path.startswith("/_sandbox/"):
            try:
                status, payload = self._control(method, split.path, query, body)
            except ValueError as exc:
                status, payload = 400, {"error": str(exc)}
            self._send(status, payload)
            return
        state = self.server.state
        entry = state.record(
            {
                "method": method,
                "path": split.path,
                "query": query,
                "body": body,
                "time": time.time(),
                "status": None,
            }
        )
        try:
            status, payload, headers, is_raw = self._api(method, split.path, query, body)
        except Exception:
            log.exception("sandbox: internal error")
            status, payload, headers, is_raw = 500, error_body(1), {}, False
        entry["status"] = status
        if status == 200 and isinstance(payload, dict) and payload.get("messages"):
            entry["wamid"] = payload["messages"][0]["id"]
        self._send(status, payload, headers, raw=is_raw)

    # -- control API ----------------------------------------------------------------------------------------
    def _control(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        state = self.server.state
        name = path[len("/_sandbox/") :].strip("/")
        if (method, name) == ("GET", "health"):
            return 200, {"ok": True}
        if (method, name) == ("GET", "requests"):
            with state.lock:
                rows = copy.deepcopy(state.requests)
            needle = query.get("path_contains")
            return 200, [r for r in rows if not needle or needle in r["path"]]
        if (method, name) == ("GET", "faults"):
            with state.lock:
                return 200, {"rules": [r.as_dict() for r in state.rules]}
        if (method, name) == ("POST", "faults"):
            raw_rules = body.get("rules") if isinstance(body, dict) else body
            if not isinstance(raw_rules, list):
                raise ValueError('expected {"rules": [...]}')
            rules = [FaultRule.from_dict(r) for r in raw_rules]
            with state.lock:
                state.rules.extend(rules)
                return 200, {"ok": True, "rules": len(state.rules)}
        if (method, name) == ("POST", "reset"):
            state.reset()
            return 200, {"ok": True}
        if (method, name) == ("GET", "config"):
            with state.lock:
                return 200, state.config()
        if (method, name) == ("POST", "config"):
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            return 200, state.configure(body)
        if (method, name) == ("GET", "catalog"):
            with state.lock:
                return 200, copy.deepcopy(state.catalogs.get(query.get("catalog_id", ""), {}))
        return 404, {"error": f"unknown sandbox route {method} {path}"}

    # -- Graph API ----------------------------------------------------------------------------------------
    def _api(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str], bool]:
        state = self.server.state
        auth = self.headers.get("Authorization") or ""
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        authorized = bool(bearer) and (state.token is None or secrets.compare_digest(bearer, state.token))
        recipient = _digits(body.get("to")) if isinstance(body, dict) else ""
        rule = state.take_fault(path, recipient) if authorized else None
        delay = (state.latency_ms + (rule.latency_ms if rule else 0.0)) / 1000.0
        if delay > 0:
            state.stop.wait(delay)
        if not authorized:
            return 401, error_body(190), {}, False
        if rule is not None and (rule.code is not None or rule.body is not None):
            headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else {}
            if rule.body is not None:
                status = rule.http_status or (http_status_for(rule.code) if rule.code is not None else 200)
                return status, rule.body, headers, True
            assert rule.code is not None
            status = rule.http_status or http_status_for(rule.code)
            return status, error_body(rule.code, rule.message, rule.details), headers, False
        match = _API.match(path)
        try:
            if match is None:
                raise _Reply(100, f"Unsupported {method.lower()} request. Unknown path {path}")
            owner, verb = match.groups()
            if verb == "check_batch_request_status":
                if method != "GET":
                    raise _Reply(100, f"Unsupported {method.lower()} request")
                return 200, self._batch_status(query), {}, False
            if method != "POST":
                raise _Reply(100, f"Unsupported {method.lower()} request")
            if verb == "messages":
                return 200, self._message(owner, body), {}, False
            return 200, self._batch(owner, verb, body), {}, False
        except _Reply as reply:
            status = reply.http_status or http_status_for(reply.code)
            return status, error_body(reply.code, details=reply.details), {}, False

    def _message(self, phone_number_id: str, body: Any) -> dict[str, Any]:
        state = self.server.state
        if not isinstance(body, dict):
            raise _Reply(100, "The request body must be a JSON object")
        if body.get("messaging_product") != "whatsapp":
            raise _Reply(100, "messaging_product must be 'whatsapp'")
        if body.get("status") == "read":  # mark as read
            if not isinstance(body.get("message_id"), str):
                raise _Reply(131008, "Parameter 'message_id' is required")
            return {"success": True}
        to = body.get("to")
        if to is None or to == "":
            raise _Reply(131008, "Parameter 'to' is required")
        digits = _digits(to)
        if not isinstance(to, str | int) or not re.fullmatch(r"\+?\d{7,15}", str(to).strip()):
            raise _Reply(131009, "Parameter 'to' is not a valid phone number")
        kind = body.get("type", "text")
        if kind not in MESSAGE_TYPES:
            raise _Reply(131051, f"Unsupported message type {kind!r}")
        content = body.get(kind)
        if not isinstance(content, dict):
            raise _Reply(131008, f"Parameter '{kind}' is required for type '{kind}'")
        if kind == "text":
            text = content.get("body")
            if not isinstance(text, str) or not text:
                raise _Reply(131008, "Parameter 'text.body' is required")
            if len(text) > TEXT_MAX:
                raise _Reply(131009, f"text.body is longer than {TEXT_MAX} characters")
        elif kind == "template":
            self._check_template(content)
        elif kind == "interactive":
            self._check_interactive(content)
        if state.over_rate(phone_number_id):
            raise _Reply(130429)
        with state.lock:
            outside = digits in state.outside_window
        if outside and kind != "template":
            raise _Reply(131047)
        wamid = f"wamid.HBgL{state.next_id():010d}{secrets.token_hex(10).upper()}"
        message: dict[str, Any] = {"id": wamid}
        if kind == "template":
            message["message_status"] = "accepted"
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": str(to), "wa_id": digits}],
            "messages": [message],
        }

    def _check_template(self, template: dict[str, Any]) -> None:
        name = template.get("name")
        if not isinstance(name, str) or not name:
            raise _Reply(131008, "Parameter 'template.name' is required")
        language = template.get("language")
        if not isinstance(language, dict) or not language.get("code"):
            raise _Reply(131008, "Parameter 'template.language.code' is required")
        with self.server.state.lock:
            known = self.server.state.templates
            expected = known.get(name) if known is not None else None
        if known is not None and name not in known:
            raise _Reply(132001, f"template name ({name}) does not exist in {language.get('code')}")
        if expected is not None:
            components = template.get("components") or []
            count = sum(
                len(c.get("parameters") or [])
                for c in components
                if isinstance(c, dict) and c.get("type") == "body"
            )
            if count != expected:
                raise _Reply(
                    132000,
                    f"body: number of localizable_params ({count}) does not match the "
                    f"expected number of params ({expected})",
                )

    @staticmethod
    def _check_interactive(interactive: dict[str, Any]) -> None:
        kind = interactive.get("type")
        if not isinstance(kind, str) or not kind:
            raise _Reply(131008, "Parameter 'interactive.type' is required")
        action = interactive.get("action")
        if not isinstance(action, dict):
            raise _Reply(131008, "Parameter 'interactive.action' is required")
        text = (
            (interactive.get("body") or {}).get("text", "")
            if isinstance(interactive.get("body"), dict)
            else ""
        )
        if kind == "button":
            if not 1 <= len(action.get("buttons") or []) <= 3:
                raise _Reply(131009, "interactive.action.buttons must have 1 to 3 buttons")
            if len(text) > 1024:
                raise _Reply(131009, "interactive.body.text is longer than 1024 characters")
        elif kind == "list":
            rows = sum(len(s.get("rows") or []) for s in action.get("sections") or [] if isinstance(s, dict))
            if not 1 <= rows <= 10:
                raise _Reply(131009, "interactive list must have 1 to 10 rows")
        if len(text) > TEXT_MAX:
            raise _Reply(131009, f"interactive.body.text is longer than {TEXT_MAX} characters")

    def _batch(self, catalog_id: str, verb: str, body: Any) -> dict[str, Any]:
        state = self.server.state
        if not isinstance(body, dict):
            raise _Reply(100, "The request body must be a JSON object")
        legacy = verb == "batch"
        if not legacy and not body.get("item_type"):
            raise _Reply(100, "Param item_type is required")
        reqs = body.get("requests")
        if isinstance(reqs, str):
            try:
                reqs = json.loads(reqs)
            except ValueError:
                reqs = None
        if not isinstance(reqs, list) or not reqs:
            raise _Reply(100, "Param requests must be a non-empty array")
        if len(reqs) > BATCH_MAX:
            raise _Reply(100, f"Param requests must have at most {BATCH_MAX} elements")
        upsert = body.get("allow_upsert", True) not in (False, "false", 0)
        statuses: list[dict[str, Any]] = []
        accepted = 0
        with state.lock:
            items = state.catalogs.setdefault(catalog_id, {})
            for req in reqs:
                errors, rid = self._apply(req, items, legacy, upsert)
                if errors:
                    statuses.append(
                        {"retailer_id": rid, "errors": [{"message": m} for m in errors], "warnings": []}
                    )
                else:
                    accepted += 1
            handle = f"sbx{secrets.token_hex(12)}" if accepted else None
            if handle is not None:
                state.batches[handle] = {
                    "catalog_id": catalog_id,
                    "created": time.monotonic(),
                    "errors": [e for s in statuses for e in s["errors"]],
                    "invalid": [s["retailer_id"] for s in statuses],
                }
        return {"handles": [handle] if handle else [], "validation_status": statuses}

    @staticmethod
    def _apply(
        req: Any, items: dict[str, dict[str, Any]], legacy: bool, upsert: bool
    ) -> tuple[list[str], str | None]:
        if not isinstance(req, dict):
            return ["request must be an object"], None
        method = str(req.get("method", "")).upper()
        data = req.get("data") if isinstance(req.get("data"), dict) else {}
        rid = req.get("retailer_id") if legacy else data.get("id")
        rid = str(rid) if rid not in (None, "") else None
        if method not in ("CREATE", "UPDATE", "DELETE"):
            return [f"unsupported method {method!r}"], rid
        if rid is None:
            return ["retailer_id is required" if legacy else "data.id is required"], rid
        if method == "DELETE":
            items.pop(rid, None)
            return [], rid
        if method == "CREATE":
            required = LEGACY_BATCH_REQUIRED if legacy else ITEMS_BATCH_REQUIRED
            missing = [f for f in required if f != "id" and data.get(f) in (None, "")]
            if missing:
                return [f"required field(s) missing: {', '.join(missing)}"], rid
            items[rid] = dict(data)
            return [], rid
        if rid not in items and not upsert:
            return [f"item {rid} does not exist"], rid
        items.setdefault(rid, {}).update(data)
        return [], rid

    def _batch_status(self, query: dict[str, str]) -> dict[str, Any]:
        state = self.server.state
        handle = query.get("handle", "")
        with state.lock:
            batch = copy.deepcopy(state.batches.get(handle))
            delay = state.batch_delay_ms / 1000.0
        if not handle or batch is None:
            raise _Reply(100, "Invalid handle")
        done = time.monotonic() - batch["created"] >= delay
        return {
            "data": [
                {
                    "handle": handle,
                    "status": "finished" if done else "in progress",
                    "errors_total_count": len(batch["errors"]),
                    "errors": batch["errors"],
                    "warnings": [],
                    "ids_of_invalid_requests": batch["invalid"],
                }
            ]
        }


# ---------------------------------------------------------------------------------------------- public API


class Sandbox:
    """A running fake Cloud/Catalog API on ``host:port`` (port 0 = pick a free one); also a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        token: str | None = None,
        *,
        outside_window: Iterable[str] = (),
        templates: dict[str, int | None] | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self._state = _State(latency_ms, token)
        self._state.outside_window = {_digits(p) for p in outside_window if _digits(p)}
        self._state.templates = dict(templates) if templates is not None else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r})" if self._server else f"Sandbox(host={self.host!r}, stopped)"

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._state.stop.clear()
        self._server = _Server((self.host, self._port), self._state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="wch-sandbox", daemon=True
        )
        self._thread.start()
        log.info("WhatsApp sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._state.stop.set()  # wakes handlers sleeping on latency
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests(self, path_contains: str | None = None) -> list[dict[str, Any]]:
        """Recorded API requests ``{method, path, query, body, time, status[, wamid]}``, oldest first."""
        with self._state.lock:
            rows = copy.deepcopy(self._state.requests)
        return [r for r in rows if not path_contains or path_contains in r["path"]]

    def add_fault(self, **rule: Any) -> None:
        """Append a fault rule (same keys as ``POST /_sandbox/faults``)."""
        parsed = FaultRule.from_dict(rule)
        with self._state.lock:
            self._state.rules.append(parsed)

    def configure(self, **config: Any) -> dict[str, Any]:
        """Set ``latency_ms``, ``outside_window``, ``templates``, ``mps_limit``, ``batch_delay_ms``."""
        return self._state.configure(config)

    def reset(self) -> None:
        """Forget recorded requests, fault rules, batches and catalog items (configuration stays)."""
        self._state.reset()

    def messages_to(self, phone: str) -> list[dict[str, Any]]:
        """Bodies of the messages to ``phone`` that were accepted (HTTP 200), oldest first."""
        digits = _digits(phone)
        return [
            r["body"]
            for r in self.requests("/messages")
            if r["status"] == 200
            and isinstance(r["body"], dict)
            and _digits(r["body"].get("to")) == digits
            and r["body"].get("status") != "read"
        ]

    def catalog(self, catalog_id: str) -> dict[str, dict[str, Any]]:
        """Current items of a catalog after the batches applied so far, by retailer id."""
        with self._state.lock:
            return copy.deepcopy(self._state.catalogs.get(catalog_id, {}))


def serve(
    host: str = "127.0.0.1",
    port: int = 8089,
    latency_ms: float = 0,
    token: str | None = None,
    *,
    stop_event: threading.Event | None = None,
    ready: Callable[[str], object] | None = None,
) -> None:
    """Run a sandbox until Ctrl-C (or ``stop_event``); ``ready(url)`` is called once it listens."""
    stop = stop_event or threading.Event()
    with Sandbox(host, port, latency_ms, token) as box:
        if ready is not None:
            ready(box.url)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
