"""``wch-bridge status``: one screen on the health of the served groups' queue, exit code 0/1/2."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import click

from wch_bridge import operations

# ``assess`` (to be replaced by the health pipeline) reads queries.CLEANUP_HOOK, queries.LIVE_HEARTBEAT_SECONDS
from wch_bridge import operations as queries
from wch_bridge.cli.common import echo_json, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.opsutil import STATUSES, ago, fmt_dt, is_tty, style, table
from wch_bridge.hooks import PLUGIN_GROUPS
from wch_bridge.operations import WorkerRow
from wch_bridge.settings import mask_dsn

PAST_DUE_WARNING = timedelta(minutes=5)
PAST_DUE_CRITICAL = timedelta(minutes=30)
DEAD_WORKER_WINDOW = timedelta(hours=24)

OK, WARNING, CRITICAL = "ok", "warning", "critical"
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2}


@dataclass
class Health:
    reasons: list[tuple[str, str]] = field(default_factory=list)

    def add(self, level: str, message: str) -> None:
        self.reasons.append((level, message))

    @property
    def level(self) -> str:
        levels = {lvl for lvl, _ in self.reasons}
        return CRITICAL if CRITICAL in levels else WARNING if WARNING in levels else OK


def _live(w: WorkerRow, now: datetime) -> bool:
    return w.live(now, operations.LIVE_HEARTBEAT_SECONDS)


def _age(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))


def assess(snap: queries.StatusSnapshot, group_slugs: tuple[str, ...], prefix: str) -> Health:
    """The rules behind the exit code (documented in ``status --help`` and docs/cli-json.md)."""
    h = Health()
    now = snap.now
    # the plugin's own groups come and go with its versions: only a group named by hand that does not exist (a typo?)
    # or no served group at all is worth a warning
    missing = [g for g in group_slugs if g not in snap.groups.values()]
    if all(g in PLUGIN_GROUPS for g in missing) and len(missing) < len(group_slugs):
        missing = []
    if missing:
        h.add(WARNING, "group(s) " + ", ".join(repr(g) for g in missing) + " do not exist yet (no action was ever "
              "scheduled there)")
    age = _age(now, snap.oldest_past_due)
    if snap.past_due and age is not None and age > PAST_DUE_CRITICAL.total_seconds():
        live = snap.workers is not None and any(_live(w, now) for w in snap.workers)
        h.add(CRITICAL, f"{snap.past_due} past-due action(s), the oldest due {ago(age)} ago: " + (
              "a worker is live, so they are hooks it does not run or it is far behind" if live
              else "nothing is running the queue (is `wch-bridge run` up?)"))
    elif snap.past_due and age is not None and age > PAST_DUE_WARNING.total_seconds():
        h.add(WARNING, f"{snap.past_due} past-due action(s), the oldest due {ago(age)} ago")
    if snap.unowned:
        names = ", ".join(f"{u['hook']} ({u['pending']} in {u['group']})" for u in snap.unowned[:10])
        h.add(CRITICAL, f"{sum(u['pending'] for u in snap.unowned)} pending action(s) of hooks no one runs: {names} "
              "(neither the bridge nor PHP has a handler for them; see `wch-bridge hooks list`)")
    if snap.failed_24h:
        h.add(WARNING, f"{snap.failed_24h} action(s) failed in the last 24 h "
              "(wch-bridge jobs list --status failed --since 24h)")
    if snap.cleanup_pending is None and not snap.cleanup_running:
        h.add(WARNING, f"the recurring {queries.CLEANUP_HOOK} is not scheduled (the plugin schedules it again on "
              "the next WordPress request; check WP-Cron)")
    if snap.api_pause and snap.api_pause.get("paused"):
        h.add(CRITICAL, f"WhatsApp sending is paused by an authentication error (code {snap.api_pause.get('error_code')}) "
              f"since {snap.api_pause.get('last_auth_error_gmt')} UTC: renew the access token and restart the worker")
    doubt = snap.in_doubt or {}
    if doubt.get("count"):
        h.add(WARNING, f"{doubt['count']} message(s) in doubt since {fmt_dt(doubt.get('oldest_gmt'))} UTC "
              f"({doubt.get('sending', 0)} sending, {doubt.get('unknown', 0)} unknown): they may or may not have "
              "reached WhatsApp and are not re-sent automatically (wch-bridge messages list --status unknown; "
              "wch-bridge messages resend)")
    if snap.workers is None:
        h.add(WARNING, f"no worker heartbeat table ({prefix}wch_bridge_workers): `wch-bridge run` creates it")
    else:
        if not any(_live(w, now) for w in snap.workers):
            h.add(WARNING, f"no live worker (no heartbeat in the last {queries.LIVE_HEARTBEAT_SECONDS} s)")
        dead = [w for w in snap.workers if not _live(w, now) and w.heartbeat_at is not None
                and now - w.heartbeat_at <= DEAD_WORKER_WINDOW]
        if dead:
            who = ", ".join(f"{w.host} pid {w.pid}" for w in dead[:5])
            h.add(WARNING, f"{len(dead)} worker(s) stopped heart-beating without a clean stop: {who}")
    return h


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


def _worker_json(w: WorkerRow, now: datetime) -> dict[str, Any]:
    return {
        "worker_id": w.worker_id, "host": w.host, "pid": w.pid, "version": w.version,
        "started_at_gmt": fmt_dt(w.started_at), "heartbeat_at_gmt": fmt_dt(w.heartbeat_at),
        "heartbeat_age_seconds": _age(now, w.heartbeat_at), "in_hand": w.in_hand,
    }


def build_report(snap: operations.StatusSnapshot, health: Health, db: dict[str, Any], groups: tuple[str, ...]) -> dict[str, Any]:
    now = snap.now
    rows, totals = _counts(snap)
    cleanup_state = "scheduled" if snap.cleanup_pending is not None else "running" if snap.cleanup_running else "missing"
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
            "live": [_worker_json(w, now) for w in snap.workers or [] if _live(w, now)],
            "dead": [_worker_json(w, now) for w in snap.workers or [] if not _live(w, now)],
        },
    }


_LEVEL_STYLE = {OK: {"fg": "green"}, WARNING: {"fg": "yellow"}, CRITICAL: {"fg": "red", "bold": True}}


def print_report(rep: dict[str, Any]) -> None:
    db = rep["database"]
    where = f"{db['host']}/{db['database']}" if db["host"] else str(db["database"])
    click.echo(f"database   {db['dialect']} {where}  prefix {db['prefix']}  ({db['dsn']})")
    click.echo(f"groups     {', '.join(rep['groups'])}    now {rep['now_gmt']} UTC")
    click.echo("")
    headers = ["HOOK", *[s.upper() for s in STATUSES], "TOTAL"]
    body = [[r["hook"], *[r[s] or "" for s in STATUSES], r["total"]] for r in rep["counts"]]
    t = rep["totals"]
    body.append([style("all hooks", bold=True), *[t[s] for s in STATUSES], t["total"]])
    for line in table(headers, body, right=range(1, len(headers))):
        click.echo(line)
    click.echo("")
    pd = rep["past_due"]
    oldest = f" (oldest due {pd['oldest_scheduled_gmt']}, {ago(pd['oldest_age_seconds'])} ago)" if pd["oldest_scheduled_gmt"] else ""
    click.echo(f"past-due           {pd['count']}{oldest}")
    failed = rep["failed_last_24h"]
    click.echo(f"failed (24 h)      {style(str(failed), fg='red') if failed else failed}")
    doubt = rep.get("messages_in_doubt") or {}
    if doubt.get("count"):
        click.echo(f"messages in doubt  {style(str(doubt['count']), fg='yellow')} since {doubt['oldest_gmt']} UTC "
                   f"({doubt['sending']} sending, {doubt['unknown']} unknown)")
    nc = rep["newest_completion_gmt"]
    click.echo(f"newest completion  {nc + ' (' + ago(rep['newest_completion_age_seconds']) + ' ago)' if nc else 'never'}")
    c = rep["cleanup"]
    detail = {"scheduled": f"scheduled, next {c['next_due_gmt']} (group {c['group']!r})", "running": "running now",
              "missing": style("NOT scheduled", fg="yellow")}[c["state"]]
    click.echo(f"recurring cleanup  {c['hook']}: {detail}")
    w = rep["workers"]
    if not w["table_exists"]:
        click.echo("workers            unknown (no heartbeat table yet)")
    else:
        click.echo(f"workers            {len(w['live'])} live, {len(w['dead'])} not heart-beating")
        for x in w["live"] + w["dead"]:
            state = style("live", fg="green") if x in w["live"] else style("dead", fg="red")
            click.echo(f"  {state}  {x['host']} pid {x['pid']} v{x['version']}  heartbeat {ago(x['heartbeat_age_seconds'])} "
                       f"ago  in hand {x['in_hand']}  ({x['worker_id']})")
    _print_paused(rep)
    click.echo("")
    level = rep["health"]
    click.echo("health: " + style(level.upper(), **_LEVEL_STYLE[level]))
    for r in rep["reasons"]:
        click.echo(f"  - {style(r['level'], **_LEVEL_STYLE[r['level']])}: {r['message']}")


def paused_json(paused: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``hooks pause``: the paused hooks, by name, for ``status --json``."""
    return [{"hook": h, "paused_at_gmt": v.get("paused_at")} for h, v in sorted(paused.items())]


def _report(cli: CliContext) -> dict[str, Any]:
    settings = cli.settings
    store = cli.store()
    snap = operations.status_snapshot(store, settings.groups, store.now())
    health = assess(snap, settings.groups, settings.prefix)
    db = {"dsn": mask_dsn(settings.dsn), **operations.database_info(store)}
    rep = build_report(snap, health, db, settings.groups)
    rep["paused_hooks"] = paused_json(operations.paused_hooks(store))
    return rep


def _print_paused(rep: dict[str, Any]) -> None:
    paused = rep.get("paused_hooks") or []
    if paused:
        names = ", ".join(p["hook"] for p in paused)
        click.echo(f"paused hooks       {style(names, fg='yellow')} (not taken by any worker: wch-bridge hooks resume H)")


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


@main.command("status")
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
    """One screen on the served groups' queue: counts by hook and status, past-due actions, failures in the last
    24 h, the newest completion, the recurring cart cleanup, the workers, the paused hooks (`hooks pause`), and
    the database looked at.

    \b
    Exit code 0 healthy, 1 warnings, 2 critical (reasons printed):
      critical  the oldest past-due action is more than 30 min late; pending actions of hooks no one runs
      warning   past-due more than 5 min late; failures in the last 24 h; wch_cleanup_expired_carts not
                scheduled; no live worker (heartbeat within 30 s); a worker died in the last 24 h without a
                clean stop; no heartbeat table; a served group does not exist; messages in doubt (ledger rows
                'sending'/'unknown': maybe delivered, never re-sent automatically)
    --watch redraws until Ctrl-C and then exits 0 (the health is in each frame).
    Database errors (unreachable, missing tables) exit 2 with one line on stderr; bad options exit 1."""
    if watch is not None:
        _watch(cli, watch, as_json)
        return
    rep = _report(cli)
    if as_json:
        echo_json(rep)
    else:
        print_report(rep)
    sys.exit(rep["exit_code"])
