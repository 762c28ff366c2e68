"""``wch-bridge status``: one screen on the health of the served groups' queue, exit code 0/1/2."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from wch_bridge import objectcache, operations
from wch_bridge.cli.common import echo_json, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.opsutil import STATUSES, ago, fmt_dt, style, table
from wch_bridge.health import (
    CRITICAL,
    EXIT_CODES,
    OK,
    WARNING,
    Verdict,
    WorkerBeat,
    judge,
    live_worker_seconds,
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
    click.echo("")
    level = rep["health"]
    click.echo("health: " + style(level.upper(), **_LEVEL_STYLE[level]))
    for r in rep["reasons"]:
        click.echo(f"  - {style(r['level'], **_LEVEL_STYLE[r['level']])}: {r['message']}")


@main.command("status")
@pass_cli_context
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (shape: docs/cli-json.md).")
def status_cmd(cli: CliContext, as_json: bool) -> None:
    """One screen on the served groups' queue: counts by hook and status, past-due actions, failures in the last
    24 h, the newest completion, the recurring cart cleanup, the workers, and the database looked at.

    \b
    Exit code 0 healthy, 1 warnings, 2 critical (reasons printed; the same verdict as the report's banner):
      critical  the oldest past-due action waited 30 min or more, or 1,000+ past due; 10+ failures in the last
                24 h that are 25 %+ of the finished actions; pending actions of hooks no one runs; no live
                worker and the last one stopped without a clean stop; WhatsApp paused by an auth error
      warning   past-due 5 min or more; failures in the last 24 h; wch_cleanup_expired_carts not scheduled;
                no live worker (heartbeat within the orphan timeout, 30 s by default) after a clean stop; no
                worker ever registered; a worker died in the last 24 h without a clean stop; no heartbeat
                table; a group named by hand (or every served group) does not exist; messages in doubt
                (ledger rows 'sending'/'unknown': maybe delivered, never re-sent automatically)
    Database errors (unreachable, missing tables) exit 2 with one line on stderr; bad options exit 1."""
    settings = cli.settings
    store = cli.store()
    snap = operations.status_snapshot(store, settings.groups, store.now(), live_worker_seconds(settings))
    health = judge(snap.facts)
    cache = objectcache.check(store.engine, store.prefix)
    if cache is not None and cache.level == WARNING:
        health.add(WARNING, cache.message)
    db = {"dsn": mask_dsn(settings.dsn), **operations.database_info(store)}
    rep = build_report(snap, health, db, settings.groups)
    if as_json:
        echo_json(rep)
    else:
        print_report(rep)
    sys.exit(rep["exit_code"])
