"""Helpers of the operator commands (``status``, ``jobs ...``): DURATION parsing, aligned tables, colours on a
TTY only, masking. (The database is opened by the command context, ``wch_bridge.cli.context``.)"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import click

from wch_bridge.cli.common import EXIT_USAGE
from wch_bridge.errors import ConfigError
from wch_bridge.masking import mask_phone, mask_phones_in_text
from wch_bridge.timeutil import FMT

STATUSES = ("pending", "in-progress", "complete", "failed", "canceled")


# ---------------------------------------------------------------------------------------------- values
_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest DURATION accepted (100 years): a cutoff ``now - DURATION`` stays a valid date.
MAX_DURATION_SECONDS = 36500 * 86400


def parse_duration(text: str | None, option: str) -> timedelta | None:
    """``30m``, ``24h``, ``7d``, ``2w``, ``90s`` or combined (``1h30m``); None when not given."""
    if text is None:
        return None
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not parts or _DURATION_PART.sub("", compact).strip():
        raise ConfigError(f"{option}: cannot read {text!r} as a duration: use e.g. 30m, 24h, 7d (units s m h d w)")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{option}: the duration must be more than 0, got {text!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise ConfigError(f"{option}: {text!r} is too long: at most {MAX_DURATION_SECONDS // 86400}d (100 years)")
    return timedelta(seconds=seconds)


def fmt_dt(dt: datetime | None) -> str | None:
    """``Y-m-d H:i:s`` (UTC for ``*_gmt``) as Action Scheduler stores it; None for never."""
    return dt.strftime(FMT) if dt is not None else None


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def first_line(text: str | None, limit: int | None = None) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    if limit is not None and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line


_ERROR_PREFIX = re.compile(r"^action failed(?: via [^:]*)?: ")


def error_text(message: str | None) -> str | None:
    """An error log line without AS's ``action failed via <context>:`` prefix, first line, phones masked."""
    if not message:
        return None
    return mask_phones_in_text(first_line(_ERROR_PREFIX.sub("", message)))


# ---------------------------------------------------------------------------------------------- masking
_PHONE_KEY = re.compile(r"phone|^(?:to|from|recipient|wa_id|msisdn)$", re.IGNORECASE)
_PHONE_MEMBER = re.compile(
    r'("(?:[^"\\]*phone[^"\\]*|to|from|recipient|wa_id|msisdn)"\s*:\s*"?)(\+?[\d][\d ()-]{4,}\d)', re.IGNORECASE
)


def mask_value(value: Any, key: str | None = None) -> Any:
    """Decoded args with phone numbers masked: phone-looking text anywhere, and any value under a phone key."""
    if isinstance(value, dict):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v, key) for v in value]
    phone_key = key is not None and _PHONE_KEY.search(key) is not None
    if isinstance(value, str):
        return mask_phone(value) if phone_key and sum(c.isdigit() for c in value) >= 6 else mask_phones_in_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and phone_key:
        return mask_phone(str(value))
    return value


def mask_json_text(text: str | None) -> str | None:
    """Raw args JSON with phone numbers masked (members named like a phone, and phone-looking strings)."""
    if text is None:
        return None
    text = _PHONE_MEMBER.sub(lambda m: m.group(1) + mask_phone(m.group(2)), text)
    return mask_phones_in_text(text)


# ---------------------------------------------------------------------------------------------- output
def is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def style(text: str, **kw: Any) -> str:
    """click.style only when stdout is a terminal."""
    return click.style(text, **kw) if is_tty() else text


STATUS_COLOURS = {
    "pending": "yellow",
    "in-progress": "cyan",
    "complete": "green",
    "failed": "red",
    "canceled": "magenta",
}


def status_text(status: str) -> str:
    return style(status, fg=STATUS_COLOURS.get(status))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> list[str]:
    """Aligned columns (two spaces apart); ``right``: indexes of right-aligned (numeric) columns. Cell widths
    are measured on the text without colour codes."""
    cells = [[("" if c is None else str(c)) for c in r] for r in rows]
    plain = [[click.unstyle(c) for c in r] for r in cells]
    widths = [len(h) for h in headers]
    for r in plain:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def line(values: Sequence[str], raw: Sequence[str]) -> str:
        out = []
        for i, (v, p) in enumerate(zip(values, raw, strict=True)):
            pad = " " * (widths[i] - len(p))
            out.append(pad + v if i in right else v + pad)
        return "  ".join(out).rstrip()

    lines = [style(line(headers, headers), bold=True)]
    lines += [line(c, p) for c, p in zip(cells, plain, strict=True)]
    return lines


def confirm(question: str, yes: bool) -> bool:
    """Ask on the terminal (default No); ``--yes`` skips. End of input counts as No."""
    if yes:
        return True
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        click.echo("", err=True)
        return False


def refused() -> None:
    click.echo("aborted: nothing was changed", err=True)
    sys.exit(EXIT_USAGE)


@contextlib.contextmanager
def progress(length: int, label: str) -> Iterator[Any]:
    """A click progress bar on stderr (stdout stays for the summary). Off a terminal click prints only the label,
    without a line end: end that line, so the summary on stdout does not run into it (``canceled 1canceling``)."""
    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        click.echo("", err=True)
