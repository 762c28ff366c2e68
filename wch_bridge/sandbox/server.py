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

from wch_bridge.sandbox import api
from wch_bridge.sandbox.faults import (
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
                return 200, api.batch_status(state, query), {}, False
            if method != "POST":
                raise _Reply(100, f"Unsupported {method.lower()} request")
            if verb == "messages":
                return 200, api.message(state, owner, body), {}, False
            return 200, api.batch(state, owner, verb, body), {}, False
        except _Reply as reply:
            status = reply.http_status or http_status_for(reply.code)
            return status, error_body(reply.code, details=reply.details), {}, False


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

