"""The sandbox's error vocabulary (Graph error bodies and HTTP statuses; the codes' titles are
``wch_bridge.error_codes``) and its fault rules."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from wch_bridge.error_codes import MEANINGS as TITLES

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
    "reset",
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
    #: Handle the request as usual (a message is accepted and recorded), then drop the connection without an
    #: answer: the client sees a connection reset after its request was received.
    reset: bool = False
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
            reset=bool(raw.get("reset")),
        )
        if rule.http_status is not None and rule.http_status > 599:
            raise ValueError("fault rule http_status must be 100-599")
        if rule.code is None and rule.body is None and not rule.latency_ms and not rule.reset:
            raise ValueError("a fault rule needs code, body, latency_ms or reset")
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


