"""The status report: plain data (from ``wch_bridge.store.reporting``) -> one self-contained HTML file or JSON.

The only jinja2 user; never queries. :func:`build_report_data` decides the health banner, masks phone numbers in
every string that came from the database, and turns datetimes into ``YYYY-MM-DD HH:MM:SS`` (UTC) strings, so the
HTML and ``--json`` show the same figures. :func:`render_html` draws the charts as inline SVG (geometry computed
here, the template only places it). :func:`write_atomic` replaces the file in one ``os.replace``.

Health rules (docs/report.md):

* critical: past-due actions whose oldest has waited >= 30 min, or >= 1000 past-due; >= 10 failures in the window
  that are >= 25 % of the finished actions; no live worker heartbeat although workers have registered before;
  the WhatsApp API paused by an authentication error (ledger rows with ``error_code`` 0 or 190, or status
  ``halted``/``paused``, newer than the last sent message); the Action Scheduler tables missing.
* warning: past-due actions older than 5 min; any failure in the window; no worker ever registered or no
  heartbeat table; the recurring ``wch_cleanup_expired_carts`` action not scheduled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from wch_bridge import __version__
from wch_bridge.errors import ConfigError
from wch_bridge.hooks import CART_CLEANUP
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.resources import templates_dir
from wch_bridge.settings import mask_dsn

log = logging.getLogger("wch_bridge.report")

OK, WARNING, CRITICAL = "ok", "warning", "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}
PAST_DUE_WARN_AGE = 300
PAST_DUE_CRIT_AGE = 1800
PAST_DUE_CRIT_COUNT = 1000
FAILURE_CRIT_COUNT = 10
FAILURE_CRIT_RATIO = 0.25
TEMPLATE = "report.html.j2"


# ---------------------------------------------------------------------------------------------- formatting
def fmt_duration(seconds: float | None) -> str:
    """``0.4 s``, ``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    if seconds is None:
        return "—"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m} min {sec} s" if sec else f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def fmt_num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def fmt_money(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.2f}"


def _clean(value: Any) -> Any:
    """Datetimes -> strings, every string masked for phone numbers (dict keys too)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str):
        return mask_phones_in_text(value)
    if isinstance(value, Mapping):
        return {(_clean(k) if isinstance(k, str) else k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def database_label(dsn: str) -> dict[str, str]:
    """host / database of a DSN, never the user or password (``mask_dsn`` first, then only two parts)."""
    masked = mask_dsn(dsn or "")
    parts = urlsplit(masked)
    scheme = parts.scheme.split("+")[0] or "?"
    if scheme == "sqlite":
        path = masked.split(":///", 1)[-1] if ":///" in masked else parts.path
        return {"kind": "sqlite", "host": "local file", "database": Path(path).name or "(memory)"}
    host = parts.hostname or "localhost"
    if parts.port:
        host = f"{host}:{parts.port}"
    return {"kind": scheme, "host": host, "database": parts.path.lstrip("/") or "?"}


# ---------------------------------------------------------------------------------------------- health
def decide_health(sections: Mapping[str, Any], window: str) -> dict[str, Any]:
    """OK / warning / critical with the reasons in words (``reasons``) and the good news (``facts``)."""
    reasons: list[dict[str, str]] = []
    facts: list[str] = []

    def add(level: str, text: str) -> None:
        reasons.append({"level": level, "text": text})

    h = sections.get("health") or {}
    if not h.get("available"):
        add(CRITICAL, f"The Action Scheduler tables could not be read: {h.get('reason', 'unknown reason')}.")
        return {"status": CRITICAL, "reasons": reasons, "facts": facts}
    n, age = int(h.get("past_due") or 0), h.get("oldest_past_due_age")
    if n:
        text = (f"{n:,} action{'s are' if n != 1 else ' is'} past due; the oldest has waited "
                f"{fmt_duration(age)} (since {_clean(h.get('oldest_past_due_gmt')) or 'an unknown date'} UTC).")
        if n >= PAST_DUE_CRIT_COUNT or (age is not None and age >= PAST_DUE_CRIT_AGE):
            add(CRITICAL, text)
        elif age is None or age >= PAST_DUE_WARN_AGE:
            add(WARNING, text)
        else:
            facts.append(text)
    else:
        facts.append("No past-due actions.")
    failed, done = int(h.get("failed_in_window") or 0), int(h.get("completed_in_window") or 0)
    if failed:
        ratio = failed / max(1, failed + done)
        add(CRITICAL if failed >= FAILURE_CRIT_COUNT and ratio >= FAILURE_CRIT_RATIO else WARNING,
            f"{failed:,} action{'s' if failed != 1 else ''} failed in the last {window} "
            f"({ratio:.0%} of {failed + done:,} finished).")
    else:
        facts.append(f"No failures in the last {window} ({done:,} actions completed).")
    unowned = (sections.get("ownership") or {}).get("unowned") or []
    if unowned:
        names = ", ".join(f"{_clean(u.get('hook'))} ({int(u.get('pending') or 0):,} in {_clean(u.get('group'))})"
                          for u in unowned[:10])
        total = sum(int(u.get("pending") or 0) for u in unowned)
        add(CRITICAL, f"{total:,} pending action{'s' if total != 1 else ''} of hooks no one runs (neither the "
                      f"bridge nor PHP): {names}. Check for a typo in the hook name, or let PHP run them "
                      "(`wch-bridge hooks list`).")
    hb = h.get("heartbeat") or {}
    stale = float((sections.get("workers") or {}).get("stale_seconds") or 60)
    if not hb.get("available"):
        add(WARNING, "Worker heartbeats are not recorded here (no heartbeat table): cannot tell whether a "
                     "wch-bridge worker is running.")
    elif not hb.get("ever"):
        add(WARNING, "No wch-bridge worker has registered a heartbeat yet.")
    elif (hb.get("last_heartbeat_age") is None or hb["last_heartbeat_age"] > stale) and _all_stopped_cleanly(sections):
        add(WARNING, "No wch-bridge worker is running: every registered worker stopped cleanly. Start "
                     "`wch-bridge run` to serve the queue.")
    elif hb.get("last_heartbeat_age") is None or hb["last_heartbeat_age"] > stale:
        last = _clean(hb.get("last_heartbeat_gmt"))
        add(CRITICAL, "No live wch-bridge worker: " + (
            f"the last heartbeat was {fmt_duration(hb.get('last_heartbeat_age'))} ago ({last} UTC)."
            if last else "every registered worker has stopped."))
    else:
        live = (sections.get("workers") or {}).get("live")
        facts.append(f"Worker heartbeat {fmt_duration(hb.get('last_heartbeat_age'))} ago"
                     + (f" ({live} live)." if live is not None else "."))
    if not h.get("cleanup_scheduled"):
        add(WARNING, f"The recurring cart cleanup ({CART_CLEANUP}) is not scheduled.")
    api = h.get("api") or {}
    if api.get("available") and api.get("paused"):
        code = api.get("error_code")
        add(CRITICAL, "WhatsApp sending is paused by an authentication error"
            + (f" (code {code})" if code is not None else "")
            + f" since {_clean(api.get('last_auth_error_gmt'))} UTC, with no message sent after it"
            + (f": {api['error_text']}" if api.get("error_text") else "") + ". Renew the access token.")
    doubt = int(api.get("in_doubt") or 0) if api.get("available") else 0
    if doubt:
        add(WARNING, f"{doubt:,} WhatsApp message{'s are' if doubt != 1 else ' is'} in doubt since "
            f"{_clean(api.get('in_doubt_since_gmt'))} UTC: the request left but no answer was recorded (a worker "
            "stopped mid-send or the connection dropped), so it may or may not have been delivered; not re-sent "
            "automatically (wch-bridge messages list --status unknown, then messages resend).")
    reasons.sort(key=lambda r: -_RANK[r["level"]])
    status = max((r["level"] for r in reasons), key=lambda lv: _RANK[lv], default=OK)
    return {"status": status, "reasons": reasons, "facts": facts}


def _all_stopped_cleanly(sections: Mapping[str, Any]) -> bool:
    """Workers were registered, none is live and none died (each recorded its stop): a clean shutdown."""
    w = sections.get("workers") or {}
    return bool(w.get("available")) and not w.get("live") and not w.get("dead") and bool(w.get("stopped"))


def build_report_data(
    sections: Mapping[str, Any],
    *,
    window: str,
    now: datetime,
    dsn: str,
    prefix: str,
    groups: tuple[str, ...] = ("wch",),
    version: str = __version__,
) -> dict[str, Any]:
    """Everything the HTML and the JSON show, masked and serializable."""
    data = {
        "meta": {
            "generated_gmt": now, "window": window, "version": version, "prefix": prefix,
            "groups": list(groups), "database": database_label(dsn),
        },
        "health": decide_health(sections, window),
        "inputs": sections.get("health"),
        **{k: v for k, v in sections.items() if k != "health"},
    }
    cleaned: dict[str, Any] = _clean(data)
    _restore_campaign_ids(data, cleaned)
    failures = cleaned.get("failures") or {}
    for row in failures.get("latest", []) if failures.get("available") else []:
        # added after masking: an 8-digit action id must not be mistaken for a phone number
        row["retry_command"] = f"wch-bridge jobs retry {int(row['action_id'])}"
    return cleaned


def _restore_campaign_ids(raw: Mapping[str, Any], cleaned: dict[str, Any]) -> None:
    """The plugin's admin campaigns are numbered with ``time()`` (ten digits): after masking, such an all-digit
    campaign id is put back, as it is an id, not a phone number (a phone in a text id stays masked)."""
    raw_rows = ((raw.get("campaigns") or {}).get("campaigns") or []) if isinstance(raw.get("campaigns"), Mapping) else []
    rows = (cleaned.get("campaigns") or {}).get("campaigns") or []
    for before, after in zip(raw_rows, rows, strict=False):
        cid = before.get("campaign_id") if isinstance(before, Mapping) else None
        if isinstance(cid, str) and cid.isdigit() and isinstance(after, dict):
            after["campaign_id"] = cid


def render_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


# ---------------------------------------------------------------------------------------------- charts
def _count_axis(value: float, ticks: int = 4) -> tuple[int, int]:
    """(top, step) of a count axis: whole-number steps of 1/2/5 x 10^k, about ``ticks`` of them."""
    raw = max(1.0, value / ticks)
    exp = 10 ** math.floor(math.log10(raw))
    step = next(int(m * exp) for m in (1, 2, 5, 10) if raw <= m * exp)
    return max(step, math.ceil(value / step) * step), step


def throughput_chart(q: Mapping[str, Any]) -> dict[str, Any]:
    """Completed and failed per bucket as two lines with a point per bucket, y axis with 5 ticks."""
    buckets = list((q.get("throughput") or {}).get("buckets") or [])
    w, h, left, right, top, bottom = 920, 280, 56, 16, 16, 56
    pw, ph = w - left - right, h - top - bottom
    ymax, ystep = _count_axis(1.15 * max([max(b["completed"], b["failed"]) for b in buckets] + [1]))
    n = max(1, len(buckets))

    def x(i: int) -> float:
        return round(left + (i + 0.5) * pw / n, 1)

    def y(v: float) -> float:
        return round(top + ph * (1 - v / ymax), 1)

    step = max(1, math.ceil(n / 8))
    long = (q.get("throughput") or {}).get("bucket_seconds", 3600) >= 6 * 3600
    xt = [{"x": x(i), "label": (b["start_gmt"][5:16] if long else b["start_gmt"][11:16])}
          for i, b in enumerate(buckets) if i % step == 0]
    yt = [{"y": y(v), "label": fmt_num(v)} for v in range(0, ymax + 1, ystep)]
    series = []
    for key, css in (("completed", "ok"), ("failed", "bad")):
        pts = [{"x": x(i), "y": y(b[key]), "value": b[key], "start": b["start_gmt"]} for i, b in enumerate(buckets)]
        series.append({"name": key, "css": css, "points": pts,
                       "polyline": " ".join(f"{p['x']},{p['y']}" for p in pts)})
    return {"w": w, "h": h, "left": left, "top": top, "pw": pw, "ph": ph, "x_ticks": xt, "y_ticks": yt,
            "series": series, "empty": not any(b["completed"] or b["failed"] for b in buckets)}


_LAG_TICKS = [(1, "1 s"), (10, "10 s"), (60, "1 min"), (600, "10 min"), (3600, "1 h"), (21600, "6 h"),
              (86400, "1 d"), (604800, "7 d"), (2592000, "30 d")]


def lag_chart(q: Mapping[str, Any]) -> dict[str, Any]:
    """p50 / p95 / max pickup lag per hook as horizontal bars on a log scale (1 s .. the next tick above max)."""
    hooks = list((q.get("pickup_lag") or {}).get("hooks") or [])
    w, left, right, top, bar, gap, label_h = 920, 16, 110, 30, 14, 14, 18
    vmax = next((t for t, _ in _LAG_TICKS if t >= max([hk["max"] for hk in hooks] + [60])), _LAG_TICKS[-1][0])
    pw = w - left - right
    span = math.log10(vmax)

    def x(v: float) -> float:
        return round(left + pw * (math.log10(max(v, 1.0)) / span), 1)

    groups, y = [], top
    for hk in hooks:
        bars = []
        for i, key in enumerate(("p50", "p95", "max")):
            v = float(hk[key] or 0)
            by = y + label_h + i * (bar + 2)
            bars.append({"key": key, "value": v, "label": fmt_duration(v), "x": left, "y": by, "h": bar,
                         "w": max(2.0, round(x(v) - left, 1))})
        groups.append({"hook": hk["hook"], "y": y, "label_y": y + 12, "bars": bars, "samples": hk["samples"]})
        y += label_h + 3 * (bar + 2) + gap
    axis_y = y
    ticks = [{"x": x(t), "label": lab} for t, lab in _LAG_TICKS if t <= vmax]
    return {"w": w, "h": axis_y + 40, "left": left, "pw": pw, "top": top, "axis_y": axis_y, "ticks": ticks,
            "groups": groups, "empty": not hooks}


# ---------------------------------------------------------------------------------------------- rendering
_ENV: Environment | None = None


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        env = Environment(loader=FileSystemLoader(str(templates_dir())), autoescape=True,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(num=fmt_num, dur=fmt_duration, money=fmt_money)
        _ENV = env
    return _ENV


def render_html(data: Mapping[str, Any]) -> str:
    q = data.get("queue") or {}
    charts = ({"throughput": throughput_chart(q), "lag": lag_chart(q)} if q.get("available")
              else {"throughput": None, "lag": None})
    return environment().get_template(TEMPLATE).render(d=data, charts=charts)


def check_writable(path: str | os.PathLike[str], option: str, *, mkdir: bool = False) -> None:
    """ConfigError (one line naming ``option``) unless a file can be written at ``path``: not a directory, its folder
    exists (created first when ``mkdir``) and a temp file can be made in it. Checked before any work is done."""
    target = Path(path)
    if str(path).strip() == "":
        raise ConfigError(f"{option}: give a file path")
    if target.is_dir():
        raise ConfigError(f"{option}: {str(target)!r} is a folder; give a file path like {target / 'report.html'}")
    folder = target.parent
    if not folder.is_dir():
        if not mkdir:
            raise ConfigError(f"{option}: the folder {str(folder)!r} does not exist (create it, or add --mkdir)")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{option}: cannot create the folder {str(folder)!r}: {exc.strerror or exc}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(folder))
        os.close(fd)
        os.unlink(tmp)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"{option}: cannot write in the folder {str(folder)!r}: {reason}") from None


def write_atomic(path: str | os.PathLike[str], text: str, *, mkdir: bool = True) -> None:
    """Write ``text`` to a temp file in the same directory, fsync, then ``os.replace`` (readers never see half)."""
    target = Path(path)
    if mkdir:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class ReportTicker:
    """``Worker(on_tick=...)``: regenerate the report at most every ``every`` seconds, in a background thread
    (one at a time), so the worker loop never waits on the report queries."""

    def __init__(self, produce: Callable[[], Mapping[str, Any]], out: str | os.PathLike[str], every: float,
                 *, monotonic: Callable[[], float] = time.monotonic, background: bool = True) -> None:
        self.produce = produce
        self.out = out
        self.every = float(every)
        self._monotonic = monotonic
        self._background = background
        self._last: float | None = None
        self._thread: threading.Thread | None = None
        self.generated = 0
        self.errors = 0

    def __call__(self, _worker: object = None) -> None:
        now = self._monotonic()
        if self._last is not None and now - self._last < self.every:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._last = now
        if self._background:
            self._thread = threading.Thread(target=self.generate, name="wch-report", daemon=False)
            self._thread.start()
        else:
            self.generate()

    def generate(self) -> None:
        try:
            write_atomic(self.out, render_html(self.produce()))
            self.generated += 1
        except Exception:  # noqa: BLE001 - a report failure must never stop the worker
            self.errors += 1
            log.exception("report: could not regenerate %s", self.out)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
