"""The sandbox's HTTP server: routes, request validation, the ``Sandbox`` handle and ``serve``."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import secrets
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wch_bridge.sandbox.faults import (
    BATCH_MAX,
    ITEMS_BATCH_REQUIRED,
    LEGACY_BATCH_REQUIRED,
    MESSAGE_TYPES,
    TEXT_MAX,
    FaultRule,
    _digits,
    _Reply,
    error_body,
    http_status_for,
)
from wch_bridge.sandbox.state import _State

log = logging.getLogger("wch_bridge.sandbox")

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
    _reset = False  # the current request is answered by dropping the connection (fault rule "reset")
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid the 40 ms ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # every request at info in the standalone sandbox (``serve``), at debug inside the demo and the tests
        level = logging.INFO if self.server.state.log_requests else logging.DEBUG
        log.log(level, "sandbox: " + format, *args)

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
        # a JSON body is JSON whatever the Content-Type says (``curl -d '{...}'`` sends it as a form)
        if text.lstrip()[:1] not in ("{", "[") and "application/x-www-form-urlencoded" in (
            self.headers.get("Content-Type") or ""
        ):
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
        self._reset = False
        try:
            status, payload, headers, is_raw = self._api(method, split.path, query, body)
        except Exception:
            log.exception("sandbox: internal error")
            status, payload, headers, is_raw = 500, error_body(1), {}, False
        entry["status"] = status
        if status == 200 and isinstance(payload, dict) and payload.get("messages"):
            entry["wamid"] = payload["messages"][0]["id"]
        if self._reset:  # fault: the request was handled, the answer never comes (connection reset)
            entry["reset"] = True
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
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
        self._reset = bool(rule is not None and rule.reset)
        delay = (state.latency_ms + (rule.latency_ms if rule else 0.0)) / 1000.0
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if delay > 0:
                state.stop.wait(delay)
        finally:
            with state.lock:
                state.in_flight -= 1
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
        log_requests: bool = False,
    ) -> None:
        self.host = host
        self._port = port
        self._state = _State(latency_ms, token)
        self._state.log_requests = log_requests  # each request at info (else debug)
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
        log.debug("WhatsApp sandbox listening on %s", self.url)  # ``serve``'s caller says it once
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

    def max_in_flight(self) -> int:
        """The most API requests this sandbox was answering at once (during their latency) since the last reset."""
        with self._state.lock:
            return self._state.max_in_flight

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
    with Sandbox(host, port, latency_ms, token, log_requests=True) as box:
        if ready is not None:
            ready(box.url)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass

