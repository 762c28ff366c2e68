"""What the sandbox's handler threads share: recorded requests, faults, config, the fake catalog."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from wch_bridge.sandbox.faults import FaultRule, _digits


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
        self.in_flight = 0  # API requests being answered right now
        self.max_in_flight = 0  # the most at once since the last reset
        self.log_requests = False  # log each request at info (the standalone sandbox), else at debug

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.rules.clear()
            self.batches.clear()
            self.catalogs.clear()
            self.buckets.clear()
            self.max_in_flight = self.in_flight

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

