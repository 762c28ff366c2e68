"""Small pieces of the HTTP exchange: the token holder that never shows it, id/version patterns, ``Retry-After``,
and "did the request leave?" for a failed connection."""

from __future__ import annotations

import math
import re

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError


class _Secret:
    """Holds the token; its repr/str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


_VERSION = re.compile(r"^v\d+\.\d+$")
_PATH_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")
TEXT_MAX = 4096
BATCH_MAX = 5000


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (numeric form only; HTTP dates and junk are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _before_request_written(exc: BaseException) -> bool:
    """True when ``exc`` (from ``requests``) happened while connecting: no byte of the request left (connection
    refused, DNS, connect timeout, TLS handshake). Anything else may have come after the request was written."""
    if isinstance(
        exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.InvalidURL
    ):
        return True
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        cur = todo.pop()
        if not isinstance(cur, BaseException) or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, NewConnectionError | ConnectTimeoutError):
            return True
        if isinstance(cur, MaxRetryError):
            todo.append(cur.reason)
        todo.extend([*cur.args, cur.__cause__, cur.__context__])
    return False


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
