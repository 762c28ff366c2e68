"""``wch-bridge status``: one screen on the health of the served groups' queue, exit code 0/1/2."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from datetime import datetime
from typing import Any

import click

from wch_bridge import hooks, operations
from wch_bridge.cli.common import echo_json, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.output import STATUSES, ago, fmt_dt, is_tty, style, table
from wch_bridge.health import (
    CRITICAL,
    EXIT_CODES,
    OK,
    WARNING,
    Verdict,
    WorkerBeat,
    judge,
)
from wch_bridge.settings import mask_dsn


def _live(w: WorkerBeat, snap: operations.StatusSnapshot) -> bool:
    return w.live(snap.now, snap.facts.live_seconds)


def _age(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


def _counts(snap: operations.StatusSnapshot) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows = []
    totals = {s: 0 for s in (*STATUSES, "other", "total")}
    for hook in sorted(snap.counts):
        by = snap.counts[hook]
        row: dict[str, Any] = {"hook": hook}
        for s in STATUSES:
            row[s] = by.get(s, 0)
        row["other"] = sum(n for s, n in by.items() if s not in STATUSES)
        row["total"] = sum(by.values())
        for k in totals:
            totals[k] += row[k]
        rows.append(row)
    return rows, totals


def _worker_json(w: WorkerBeat, now: datetime) -> dict[str, Any]:
    return {
        "worker_id": w.worker_id, "host": w.host, "pid": w.pid, "version": w.version,
        "started_at_gmt": fmt_dt(w.started_at), "heartbeat_at_gmt": fmt_dt(w.heartbeat_at),
        "heartbeat_age_seconds": _age(now, w.heartbeat_at), "in_hand": w.in_hand,
    }


def build_report(snap: operations.StatusSnapshot, health: Verdict, db: dict[str, Any], groups: tuple[str, ...]) -> dict[str, Any]:
    now = snap.now
    rows, totals = _counts(snap)
    cleanup_state = snap.facts.cleanup_state
    return {
        "health": health.level,
        "exit_code": EXIT_CODES[health.level],
        "reasons": [{"level": lvl, "message": msg} for lvl, msg in health.reasons],
        "database": db,
        "groups": list(groups),
        "group_ids": sorted(snap.groups),
        "now_gmt": fmt_dt(now),
        "counts": rows,
        "totals": totals,
        "past_due": {
            "count": snap.past_due,
            "oldest_scheduled_gmt": fmt_dt(snap.oldest_past_due),
            "oldest_age_seconds": _age(now, snap.oldest_past_due) if snap.past_due else None,
        },
        "failed_last_24h": snap.failed_24h,
        "unowned": snap.unowned,
        "newest_completion_gmt": fmt_dt(snap.newest_completion),
        "newest_completion_age_seconds": _age(now, snap.newest_completion),
        "cleanup": {
            "hook": operations.CLEANUP_HOOK,
            "state": cleanup_state,
            "next_due_gmt": fmt_dt(snap.cleanup_pending),
            "group": snap.cleanup_pending_group,
        },
        "messages_in_doubt": None if snap.in_doubt is None else {
            "count": snap.in_doubt["count"], "sending": snap.in_doubt["sending"],
            "unknown": snap.in_doubt["unknown"], "oldest_gmt": fmt_dt(snap.in_doubt["oldest_gmt"]),
        },
        "workers": {
            "table_exists": snap.workers is not None,
            "live": [_worker_json(w, now) for w in snap.workers or [] if _live(w, snap)],
            "dead": [_worker_json(w, now) for w in snap.workers or [] if not _live(w, snap)],
        },
    }


_LEVEL_STYLE = {OK: {"fg": "green"}, WARNING: {"fg": "yellow"}, CRITICAL: {"fg": "red", "bold": True}}
#: The count columns of the text table (the JSON keeps the status names).
_HEADERS = {"pending": "PENDING", "in-progress": "RUNNING", "complete": "COMPLETE", "failed": "FAILED",
            "canceled": "CANCELED"}
LABEL = 19  # the width of the labels ("recurring cleanup  ")


def _width() -> int:
    """The terminal's columns (COLUMNS, else the terminal, else 80), at least 60."""
    return max(60, shutil.get_terminal_size((80, 24)).columns)


def _lines(text: str, indent: int, width: int) -> list[str]:
    """``text`` wrapped at words to ``width``, the lines after the first indented by ``indent``."""
    return textwrap.wrap(text, width, subsequent_indent=" " * indent, break_long_words=False,
                         break_on_hyphens=False) or [""]


def _field(label: str, text: str, width: int, styled: tuple[str, str] | None = None) -> None:
    """One labelled line, wrapped; ``styled``: (plain word, styled word) replaced once on the first line."""
    lines = _lines(f"{label:<{LABEL - 2}}  {text}", LABEL, width)
    if styled:
        lines[0] = lines[0].replace(styled[0], styled[1], 1)
    for line in lines:
        click.echo(line)


def _print_counts(rep: dict[str, Any], width: int) -> None:
    """The counts table; a hook name too long for the terminal gets a line of its own above its counts."""
    headers = ["HOOK", *[_HEADERS[s] for s in STATUSES], "TOTAL"]
    t = rep["totals"]
    numbers = [[*[r[s] or "" for s in STATUSES], r["total"]] for r in rep["counts"]]
    numbers.append([*[t[s] for s in STATUSES], t["total"]])
    widths = [max(len(h), *(len(str(n[i])) for n in numbers)) for i, h in enumerate(headers[1:])]
    room = max(len("all hooks"), width - sum(widths) - 2 * len(widths))
    own_line = {i for i, r in enumerate(rep["counts"]) if len(r["hook"]) > room}
    body = [["" if i in own_line else r["hook"], *numbers[i]] for i, r in enumerate(rep["counts"])]
    body.append([style("all hooks", bold=True), *numbers[-1]])
    lines = table(headers, body, right=range(1, len(headers)))
    click.echo(lines[0])
    for i, line in enumerate(lines[1:]):
        if i in own_line:
            click.echo(rep["counts"][i]["hook"])
        click.echo(line)


def print_report(rep: dict[str, Any]) -> None:
    width = _width()
    db = rep["database"]
    where = f"{db['host']}/{db['database']}" if db["host"] else str(db["database"])
    _field("database", f"{db['dialect']} {where}  prefix {db['prefix']}", width)
    _field("dsn", db["dsn"], width)
    _field("groups", ", ".join(rep["groups"]), width)
    _field("now", f"{rep['now_gmt']} UTC", width)
    click.echo("")
    _print_counts(rep, width)
    click.echo("")
    pd = rep["past_due"]
    oldest = f" (oldest due {pd['oldest_scheduled_gmt']}, {ago(pd['oldest_age_seconds'])} ago)" if pd["oldest_scheduled_gmt"] else ""
    _field("past-due", f"{pd['count']}{oldest}", width)
    failed = rep["failed_last_24h"]
    _field("failed (24 h)", str(failed), width, (str(failed), style(str(failed), fg="red")) if failed else None)
    doubt = rep.get("messages_in_doubt") or {}
    if doubt.get("count"):
        n = str(doubt["count"])
        _field("messages in doubt", f"{n} since {doubt['oldest_gmt']} UTC ({doubt['sending']} sending, "
               f"{doubt['unknown']} unknown)", width, (n, style(n, fg="yellow")))
    nc = rep["newest_completion_gmt"]
    _field("newest completion", f"{nc} ({ago(rep['newest_completion_age_seconds'])} ago)" if nc else "never", width)
    c = rep["cleanup"]
    detail = {"scheduled": f"scheduled, next {c['next_due_gmt']} (group {c['group']!r})", "running": "running now",
              "missing": "NOT scheduled"}[c["state"]]
    missing = ("NOT scheduled", style("NOT scheduled", fg="yellow")) if c["state"] == "missing" else None
    _field("recurring cleanup", f"{c['hook']}: {detail}", width, missing)
    _print_workers(rep["workers"], width)
    _print_paused(rep, width)
    click.echo("")
    level = rep["health"]
    click.echo("health: " + style(level.upper(), **_LEVEL_STYLE[level]))
    for r in rep["reasons"]:
        lines = _lines(f"  - {r['level']}: {r['message']}", 4, width)
        lines[0] = lines[0].replace(r["level"], style(r["level"], **_LEVEL_STYLE[r["level"]]), 1)
        for line in lines:
            click.echo(line)


def _print_workers(w: dict[str, Any], width: int) -> None:
    if not w["table_exists"]:
        _field("workers", "unknown (no heartbeat table yet)", width)
        return
    _field("workers", f"{len(w['live'])} live, {len(w['dead'])} not heart-beating", width)
    for x in w["live"] + w["dead"]:
        state = "live" if x in w["live"] else "dead"
        text = (f"  {state}  {x['host']} pid {x['pid']} v{x['version']}  heartbeat {ago(x['heartbeat_age_seconds'])} "
                f"ago  in hand {x['in_hand']}  ({x['worker_id']})")
        lines = _lines(text, 8, width)
        lines[0] = lines[0].replace(state, style(state, fg="green" if state == "live" else "red"), 1)
        for line in lines:
            click.echo(line)


def paused_json(paused: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``hooks pause``: the paused hooks, by name, for ``status --json``."""
    return [{"hook": h, "paused_at_gmt": v.get("paused_at")} for h, v in sorted(paused.items())]


def _print_paused(rep: dict[str, Any], width: int) -> None:
    paused = rep.get("paused_hooks") or []
    if paused:
        names = ", ".join(p["hook"] for p in paused)
        _field("paused hooks", f"{names} (not taken by any worker: wch-bridge hooks resume H)", width,
               (names, style(names, fg="yellow")))


def _report(cli: CliContext) -> dict[str, Any]:
    settings = cli.settings
    store = cli.store()
    snap = operations.status_snapshot(settings, store)
    health = judge(snap.facts)
    db = {"dsn": mask_dsn(settings.dsn), **operations.database_info(store)}
    rep = build_report(snap, health, db, settings.groups)
    rep["paused_hooks"] = paused_json(operations.paused_hooks(store))
    return rep


def _watch(cli: CliContext, seconds: float, as_json: bool) -> None:
    """Redraw every ``seconds`` until Ctrl-C (exit 0). On a terminal the screen is cleared between frames."""
    try:
        while True:
            rep = _report(cli)
            if as_json:
                click.echo(json.dumps(rep, default=str, ensure_ascii=False))
            else:
                if is_tty():
                    click.echo("\x1b[H\x1b[2J", nl=False)
                click.echo(style(f"every {seconds:g} s, Ctrl-C to stop", dim=True))
                print_report(rep)
                click.echo("")
            sys.stdout.flush()
            time.sleep(seconds)
    except KeyboardInterrupt:
        sys.exit(0)


#: ``status --help`` (built here so the cleanup hook's name comes from the table of hooks).
STATUS_HELP = f"""One screen on the served groups' queue: counts by hook and status, past-due actions,
    failures in the last 24 h, the newest completion, the recurring cart cleanup, the workers, the paused hooks (`hooks pause`), and
    the database looked at.

    \b
    Exit code 0 healthy, 1 warnings, 2 critical (reasons printed; the same verdict as the report's banner):
      critical  the oldest past-due action waited 30 min or more, or 1,000+ past due; 10+ failures in the last
                24 h that are 25 %+ of the finished actions; pending actions of hooks no one runs; no live
                worker and the last one stopped without a clean stop; WhatsApp paused by an auth error
      warning   past-due 5 min or more; failures in the last 24 h; {hooks.CART_CLEANUP} not scheduled;
                no live worker (heartbeat within the orphan timeout, 30 s by default) after a clean stop; no
                worker ever registered; a worker died in the last 24 h without a clean stop; no heartbeat
                table; a group named by hand (or every served group) does not exist; messages in doubt
                (ledger rows 'sending'/'unknown': maybe delivered, never re-sent automatically)
    --watch redraws until Ctrl-C and then exits 0 (the health is in each frame).
    Database errors (unreachable, missing tables) exit 2 with one line on stderr; bad options exit 1."""


@main.command("status", help=STATUS_HELP)
@pass_cli_context
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (shape: docs/cli-json.md).")
@click.option(
    "--watch",
    "watch",
    type=click.FloatRange(0.2, 3600),
    is_flag=False,
    flag_value=2.0,
    default=None,
    metavar="[SECONDS]",
    help="Redraw every SECONDS (default 2) until Ctrl-C; exits 0. With --json: one JSON object per line and frame.",
)
def status_cmd(cli: CliContext, as_json: bool, watch: float | None = None) -> None:
    if watch is not None:
        _watch(cli, watch, as_json)
        return
    rep = _report(cli)
    if as_json:
        echo_json(rep)
    else:
        print_report(rep)
    sys.exit(rep["exit_code"])
