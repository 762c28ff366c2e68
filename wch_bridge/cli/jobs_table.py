"""The table of ``wch-bridge jobs list``: whole values when the output is not a terminal (a pipe, a file: for
grep and scripts), else fitted to the terminal's width (or ``COLUMNS``): dates shortened like ``ls -l`` (``HH:MM``
today, ``MM-DD`` this year, else the year), the hook cut, and one last column with the error (``! ...``) and the
args sharing what is left, each cut with "…"."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from typing import Any

import click

from wch_bridge.cli.output import first_line, is_tty, status_text, table
from wch_bridge.timeutil import FMT

#: Below this many columns the table is drawn as for this many (the last column would vanish).
MIN_WIDTH = 60
HOOK_MIN, HOOK_MAX = 12, 25
SEP = 2


def output_width() -> int | None:
    """``COLUMNS`` when set, else the terminal's width on a terminal, else None (no limit)."""
    raw = os.environ.get("COLUMNS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return max(MIN_WIDTH, int(raw))
    if is_tty():
        return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)
    return None


def cut(text: str, limit: int) -> str:
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_date(value: str | None, now: datetime) -> str:
    """``HH:MM`` today, ``MM-DD`` this year, else ``YYYY`` (UTC, like ``ls -l``); ``-`` for never."""
    if not value:
        return "-"
    dt = datetime.strptime(value, FMT)
    if dt.date() == now.date():
        return dt.strftime("%H:%M")
    return dt.strftime("%m-%d") if dt.year == now.year else str(dt.year)


def _detail(item: dict[str, Any], limit: int | None) -> str:
    err = first_line(item["last_error"])
    args = item["args_summary"]
    if limit is None:
        return " · ".join(p for p in (f"! {cut(err, 60)}" if err else "", args) if p)
    if err and (limit < 30 or not args):
        return cut(f"! {err}", limit)  # narrow: the error matters more than the args
    if err:
        mine = cut(f"! {err}", max(limit // 2, limit - len(args) - 3))
        return cut(f"{mine} · {args}" if args else mine, limit)
    return cut(args, limit)


def list_table(items: list[dict[str, Any]], width: int | None, now: datetime) -> list[str]:
    """The lines of the table (header first) for ``width`` columns (None: whole values)."""
    if width is None:
        headers = ["ID", "HOOK", "STATUS", "SCHEDULED (UTC)", "LAST ATTEMPT (UTC)", "ATTEMPTS", "LAST ERROR · ARGS"]
        body = [
            [i["id"], i["hook"], status_text(i["status"]), i["scheduled_gmt"] or "-", i["last_attempt_gmt"] or "-",
             i["attempts"], _detail(i, None)]
            for i in items
        ]
        return table(headers, body, right=(0, 5))
    headers = ["ID", "HOOK", "STATUS", "DUE", "RAN", "TRY", "ERROR · ARGS"]
    ids = max(len("ID"), *(len(str(i["id"])) for i in items))
    status_w = max(len("STATUS"), *(len(i["status"]) for i in items))
    tries = max(len("TRY"), *(len(str(i["attempts"])) for i in items))
    fixed = ids + status_w + 5 + 5 + tries + SEP * 6
    hook_w = min(HOOK_MAX, max(len(i["hook"]) for i in items))
    rest = width - fixed - hook_w
    if rest < 20:  # give the last column some of the hook's room, down to HOOK_MIN
        hook_w = max(HOOK_MIN, hook_w - (20 - rest))
        rest = width - fixed - hook_w
    hook_w = max(hook_w, len("HOOK"))
    body = [
        [i["id"], cut(i["hook"], hook_w), status_text(i["status"]), short_date(i["scheduled_gmt"], now),
         short_date(i["last_attempt_gmt"], now), i["attempts"], _detail(i, max(rest, 1))]
        for i in items
    ]
    lines = table(headers, body, right=(0, 5))
    return [line if len(click.unstyle(line)) <= width else line[:width] for line in lines]
