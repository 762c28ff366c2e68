"""The status report: plain data (from ``wch_bridge.store.reports``) -> one self-contained HTML file or JSON.

The only jinja2 user; never queries. :func:`build_report_data` adds the health banner, masks phone numbers in
every string that came from the database, and turns datetimes into ``YYYY-MM-DD HH:MM:SS`` (UTC) strings, so the
HTML and ``--json`` show the same figures. :func:`render_html` draws the charts as inline SVG (geometry computed
here, the template only places it). :func:`write_atomic` replaces the file in one ``os.replace``.

The health banner is :func:`wch_bridge.health.judge`'s verdict on the facts of ``store.reports.health_facts``: the same
rules, thresholds and words as ``wch-bridge status`` (docs/report.md lists them).
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

from wch_bridge import __version__, error_codes
from wch_bridge.errors import ConfigError
from wch_bridge.health import HealthFacts, facts_json, fmt_duration, judge
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.resources import templates_dir
from wch_bridge.settings import mask_dsn

log = logging.getLogger("wch_bridge.report")

TEMPLATE = "report.html.j2"


# ---------------------------------------------------------------------------------------------- formatting
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
def health_banner(facts: HealthFacts) -> dict[str, Any]:
    """The banner: :func:`wch_bridge.health.judge`'s verdict (the one ``wch-bridge status`` prints) in words."""
    v = judge(facts)
    return {"status": v.level, "reasons": [{"level": r.level, "text": r.text} for r in v.reasons], "facts": v.facts}


def build_report_data(
    sections: Mapping[str, Any],
    facts: HealthFacts,
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
        "health": health_banner(facts),
        "inputs": facts_json(facts),
        **sections,
    }
    cleaned: dict[str, Any] = _clean(data)
    _restore_campaign_ids(data, cleaned)
    _add_error_meanings(cleaned)
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


def _add_error_meanings(cleaned: dict[str, Any]) -> None:
    """Each WhatsApp error code of the campaigns section gets its meaning (``131026`` -> "Message Undeliverable")."""
    campaigns = cleaned.get("campaigns")
    if not isinstance(campaigns, dict):
        return
    rows = list(campaigns.get("errors_in_window") or [])
    for camp in campaigns.get("campaigns") or []:
        rows += camp.get("errors") or []
    for row in rows:
        row["meaning"] = error_codes.meaning(row.get("error_code"))


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

    every = max(1, math.ceil(n / 8))
    seconds = int((q.get("throughput") or {}).get("bucket_seconds") or 3600)
    # seconds where intervals are shorter than a minute; the date where the chart spans more than a day
    cut = slice(11, 19) if seconds < 60 else slice(5, 16) if seconds * n > 86400 else slice(11, 16)
    xt = [{"x": x(i), "label": b["start_gmt"][cut]} for i, b in enumerate(buckets) if i % every == 0]
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
